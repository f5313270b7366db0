package media

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// What relay does to objects itself, beyond signing URLs: small ranged reads
// (an index, the first bytes of an image), small writes of its own, and
// server-side composition of an object from byte ranges of others (S3
// multipart upload-part-copy), so that clips are built without relay
// reading any media.

// Part is a byte range of an existing object.
type Part struct {
	Key            string
	Offset, Length int64
}

// Limits of the object operations relay does itself.
const (
	// MaxRangeBytes bounds one GetRange: it reads indexes and headers,
	// never media.
	MaxRangeBytes = 4 << 20
	// MaxSmallPut bounds Put: objects relay writes itself are small.
	MaxSmallPut = 8 << 20
	// S3MinPartBytes is S3's minimum size of every part of a multipart
	// upload but the last (versitygw enforces it too).
	S3MinPartBytes = 5 << 20
	// MaxParts is S3's limit of parts per multipart upload.
	MaxParts = 10000
	// MaxPartBytes is S3's limit for one part.
	MaxPartBytes = 5 << 30
)

// ErrPartTooSmall: a part other than the last is smaller than the store's
// minimum; the caller must plan around it (see MinPartBytes).
var ErrPartTooSmall = errors.New("part smaller than the store's minimum")

// Composer is implemented by *S3 and *Local.
type Composer interface {
	// GetRange reads n bytes at off (at most MaxRangeBytes); fewer when the
	// object ends first. ErrNotFound (wrapped) when absent.
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// Put writes a small object (at most MaxSmallPut bytes).
	Put(ctx context.Context, key string, body []byte, contentType string) error
	// Compose writes dst as the concatenation of parts, server-side.
	// Every part but the last must hold at least MinPartBytes.
	Compose(ctx context.Context, dst string, parts []Part, contentType string) (ObjectInfo, error)
	// MinPartBytes is the smallest part Compose takes before the last.
	MinPartBytes() int64
}

var (
	_ Composer = (*S3)(nil)
	_ Composer = (*Local)(nil)
)

// checkParts validates a composition against a store's minimum part size.
func checkParts(dst string, parts []Part, minPart int64, validate func(string) error) error {
	if err := validate(dst); err != nil {
		return err
	}
	if len(parts) == 0 || len(parts) > MaxParts {
		return fmt.Errorf("media: compose %s: %d parts, want 1 to %d", dst, len(parts), MaxParts)
	}
	for i, p := range parts {
		if err := validate(p.Key); err != nil {
			return err
		}
		switch {
		case p.Offset < 0 || p.Length < 1 || p.Length > MaxPartBytes:
			return fmt.Errorf("media: compose %s: part %d: range %d+%d", dst, i, p.Offset, p.Length)
		case i < len(parts)-1 && p.Length < minPart:
			return fmt.Errorf("media: compose %s: part %d of %d bytes: %w (%d)", dst, i, p.Length, ErrPartTooSmall, minPart)
		}
	}
	return nil
}

// MinPartBytes is S3's 5 MiB.
func (s *S3) MinPartBytes() int64 { return S3MinPartBytes }

// GetRange reads bytes [off, off+n) of key with a ranged GET.
func (s *S3) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if off < 0 || n < 1 || n > MaxRangeBytes {
		return nil, fmt.Errorf("media: range %d+%d of %s: want 1 to %d bytes", off, n, key, MaxRangeBytes)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("media: get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("media: get %s bytes %d+%d: %w", key, off, n, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, n))
	if err != nil {
		return nil, fmt.Errorf("media: get %s bytes %d+%d: %w", key, off, n, err)
	}
	return b, nil
}

// Put uploads a small object relay made itself.
func (s *S3) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := checkPut(int64(len(body)), contentType, MaxSmallPut); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("media: put %s: %w", key, err)
	}
	return nil
}

// copyParallel bounds the part copies of one composition in flight.
const copyParallel = 8

// defaultAbortTimeout bounds the clean-up of a failed composition.
const defaultAbortTimeout = 30 * time.Second

// Compose builds dst with a multipart upload whose parts are copies of
// byte ranges (UploadPartCopy): the bytes move inside the object store.
func (s *S3) Compose(ctx context.Context, dst string, parts []Part, contentType string) (ObjectInfo, error) {
	if err := checkParts(dst, parts, S3MinPartBytes, ValidateKey); err != nil {
		return ObjectInfo{}, err
	}
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(dst), ContentType: aws.String(contentType),
	})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("media: compose %s: create upload: %w", dst, err)
	}
	abort := func(err error) (ObjectInfo, error) {
		// A fresh context: the upload must go even when ctx ended.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultAbortTimeout)
		defer cancel()
		_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(dst), UploadId: up.UploadId,
		})
		return ObjectInfo{}, err
	}
	done := make([]types.CompletedPart, len(parts))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, copyParallel)
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-cctx.Done():
				return
			}
			defer func() { <-sem }()
			num := int32(i + 1)
			out, err := s.client.UploadPartCopy(cctx, &s3.UploadPartCopyInput{
				Bucket: aws.String(s.bucket), Key: aws.String(dst), UploadId: up.UploadId, PartNumber: aws.Int32(num),
				CopySource:      aws.String(s.bucket + "/" + escapeKey(p.Key)),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", p.Offset, p.Offset+p.Length-1)),
			})
			if err == nil && (out.CopyPartResult == nil || out.CopyPartResult.ETag == nil) {
				err = errors.New("no ETag in the answer")
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("media: compose %s: copy part %d (%s bytes %d+%d): %w", dst, num, p.Key, p.Offset, p.Length, err)
					cancel()
				}
				mu.Unlock()
				return
			}
			done[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(num)}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return abort(firstErr)
	}
	if _, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(dst), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	}); err != nil {
		return abort(fmt.Errorf("media: compose %s: complete: %w", dst, err))
	}
	return s.Head(ctx, dst)
}

// escapeKey URL-encodes a key for x-amz-copy-source, segment by segment.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// MinPartBytes: the local store concatenates files; any part size goes.
func (l *Local) MinPartBytes() int64 { return 1 }

// GetRange reads bytes [off, off+n) of key's file.
func (l *Local) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.validateKey(key); err != nil {
		return nil, err
	}
	if off < 0 || n < 1 || n > MaxRangeBytes {
		return nil, fmt.Errorf("media: range %d+%d of %s: want 1 to %d bytes", off, n, key, MaxRangeBytes)
	}
	f, _, err := l.open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("media: read %s: %w", key, err)
	}
	return b[:k], nil
}

// Put stores a small object relay made itself.
func (l *Local) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.validateKey(key); err != nil {
		return err
	}
	if err := checkPut(int64(len(body)), contentType, min(MaxSmallPut, l.max)); err != nil {
		return err
	}
	tmp, err := l.writeTemp("put-*", body)
	if err != nil {
		return fmt.Errorf("media: put %s: %w", key, err)
	}
	sum := md5.Sum(body)
	return l.install(tmp, key, hex.EncodeToString(sum[:]), contentType)
}

// install gives tmp's content to key: metadata first, then the file (see servePut).
func (l *Local) install(tmp, key, etag, contentType string) error {
	fi, err := os.Stat(tmp)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("media: %s: %w", key, err)
	}
	m := meta{Size: fi.Size(), ETag: etag, ContentType: contentType, Ino: fileIno(fi), ModNs: fi.ModTime().UnixNano()}
	if err := l.writeMeta(key, m); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("media: %s: %w", key, err)
	}
	if err := l.place(tmp, l.objDir, l.objPath(key)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("media: %s: %w", key, err)
	}
	return nil
}

// Compose concatenates ranges of local objects into dst. The copies go
// through copy_file_range where the kernel has it: the data does not pass
// through relay's memory. The ETag is, as for an S3 multipart upload, not
// the MD5 of the content: a hash of the parts and their count.
func (l *Local) Compose(ctx context.Context, dst string, parts []Part, contentType string) (ObjectInfo, error) {
	if err := checkParts(dst, parts, 1, l.validateKey); err != nil {
		return ObjectInfo{}, err
	}
	var total int64
	for _, p := range parts {
		total += p.Length
	}
	if total > l.max {
		return ObjectInfo{}, fmt.Errorf("media: compose %s: %d bytes, more than the limit of %d", dst, total, l.max)
	}
	out, err := os.CreateTemp(l.tmpDir, "compose-*")
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("media: compose %s: %w", dst, err)
	}
	tmp := out.Name()
	fail := func(err error) (ObjectInfo, error) {
		out.Close()
		os.Remove(tmp)
		return ObjectInfo{}, fmt.Errorf("media: compose %s: %w", dst, err)
	}
	etag := md5.New()
	for i, p := range parts {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		f, info, err := l.open(p.Key)
		if err != nil {
			return fail(err)
		}
		if p.Offset+p.Length > info.Size {
			f.Close()
			return fail(fmt.Errorf("part %d: range %d+%d of %s, which has %d bytes", i, p.Offset, p.Length, p.Key, info.Size))
		}
		if _, err := f.Seek(p.Offset, io.SeekStart); err != nil {
			f.Close()
			return fail(err)
		}
		n, err := out.ReadFrom(&io.LimitedReader{R: f, N: p.Length})
		f.Close()
		if err == nil && n != p.Length {
			err = fmt.Errorf("part %d: copied %d of %d bytes", i, n, p.Length)
		}
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(etag, "%s\n%s\n%d\n%d\n", p.Key, info.ETag, p.Offset, p.Length)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		return fail(err)
	}
	tag := fmt.Sprintf("%s-%d", hex.EncodeToString(etag.Sum(nil)), len(parts))
	if err := l.install(tmp, dst, tag, contentType); err != nil {
		return ObjectInfo{}, err
	}
	return l.Head(ctx, dst)
}
