package main

import (
	"context"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// awsDefaultConcurrency is the AWS CLI's s3 max_concurrent_requests default.
const awsDefaultConcurrency = 10

// awsConfig is the AWS CLI config file of the reference: the region, and
// max_concurrent_requests when -aws-concurrency sets it.
func awsConfig(concurrency int) string {
	s := "[default]\nregion = " + region + "\n"
	if concurrency > 0 {
		s += fmt.Sprintf("s3 =\n  max_concurrent_requests = %d\n", concurrency)
	}
	return s
}

// awsEnv is the environment of the reference: the caller's AWS_* settings
// (profile, config, endpoints) are dropped so the run depends on nothing
// but the flags; credentials are the S3 server's root keys.
func awsEnv(base []string, configPath string, s3 *s3Server) []string {
	env := filterEnv(base, "AWS_")
	return append(env,
		"AWS_ACCESS_KEY_ID="+s3.accessKey,
		"AWS_SECRET_ACCESS_KEY="+s3.secretKey,
		"AWS_DEFAULT_REGION="+region,
		"AWS_CONFIG_FILE="+configPath,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	)
}

// refOne uploads the backlog's segment files with
//
//	aws s3 cp --recursive DATA/segments s3://BUCKET/ref-rN/ --endpoint-url URL --no-progress
//
// timed from the process start to its exit.
func refOne(ctx context.Context, e *env, round int) (*result, error) {
	name := fmt.Sprintf("aws-r%d", round)
	runDir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(runDir, 0o750); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(runDir, "aws-config")
	if err := os.WriteFile(cfgPath, []byte(awsConfig(e.o.awsConcurrency)), 0o600); err != nil {
		return nil, err
	}
	prefix := fmt.Sprintf("ref-r%d/", round)
	// A stuck reference ends with the same -timeout as a drain.
	tctx, cancel := context.WithTimeout(ctx, e.o.timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, e.bins.aws, "s3", "cp", "--recursive", "--no-progress",
		filepath.Join(e.bl.dataDir, segmentsDir), "s3://"+bucket+"/"+prefix, "--endpoint-url", e.s3.endpoint)
	cmd.Env = awsEnv(os.Environ(), cfgPath, e.s3)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logPath := filepath.Join(runDir, "aws.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.WaitDelay = stopGrace

	relay0, s30, err := e.serverTicks()
	if err != nil {
		return nil, err
	}
	syncDisks()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start aws: %w", err)
	}
	waitErr := cmd.Wait()
	elapsed := time.Since(start)
	relay1, s31, err := e.serverTicks()
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	parallel := e.o.awsConcurrency
	if parallel == 0 {
		parallel = awsDefaultConcurrency
	}
	r := &result{Round: round, Uploader: "aws s3 cp", Parallel: parallel, Bytes: e.bl.bytes, Segments: e.bl.segments,
		Seconds: elapsed.Seconds(), RelayCPU: float64(relay1-relay0) / e.hz, S3CPU: float64(s31-s30) / e.hz, Prefix: prefix}
	if ps := cmd.ProcessState; ps != nil {
		// wait4's rusage: the process and the children it waited for.
		r.UploaderCPU = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	if waitErr != nil {
		if tctx.Err() != nil {
			waitErr = fmt.Errorf("%w: killed after -timeout %s", waitErr, e.o.timeout)
		}
		r.Problems = append(r.Problems, fmt.Sprintf("aws s3 cp: %v\n%s", waitErr, procstat.Tail(logPath, 10)))
	}
	e.checkObjects(r)
	return r, nil
}

// awsStartup times aws s3 cp --recursive of an empty directory: the CLI's
// start-up and exit, which every reference time includes.
func awsStartup(ctx context.Context, e *env) (time.Duration, error) {
	runDir := filepath.Join(e.dir, "aws-empty")
	empty := filepath.Join(runDir, "empty")
	if err := os.MkdirAll(empty, 0o750); err != nil {
		return 0, err
	}
	cfgPath := filepath.Join(runDir, "aws-config")
	if err := os.WriteFile(cfgPath, []byte(awsConfig(e.o.awsConcurrency)), 0o600); err != nil {
		return 0, err
	}
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(tctx, e.bins.aws, "s3", "cp", "--recursive", "--no-progress",
		empty, "s3://"+bucket+"/empty/", "--endpoint-url", e.s3.endpoint)
	cmd.Env = awsEnv(os.Environ(), cfgPath, e.s3)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("aws s3 cp of an empty dir: %w: %s", err, out)
	}
	return time.Since(start), nil
}

// syncDisks flushes dirty pages before a run, so that the writeback of the
// previous run's objects does not land in this one's time.
func syncDisks() { syscall.Sync() }
