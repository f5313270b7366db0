package media

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config configures an S3 store; field names follow the relay config's
// s3 section (s3.endpoint, s3.region, ...).
type S3Config struct {
	// Endpoint is the server's base URL, e.g. "http://127.0.0.1:7070";
	// empty means AWS's own endpoint for Region.
	Endpoint string
	// Region is the signing region; empty means "us-east-1".
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
	// PathStyle addresses the bucket as endpoint/bucket/key instead of
	// bucket.endpoint/key; most self-hosted servers need it.
	PathStyle bool
}

// S3 stores objects in one bucket of an S3-compatible server. Clients
// upload and download through presigned URLs; relay itself only signs,
// HEADs and DELETEs.
type S3 struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
}

// NewS3 validates c and builds the client. It does not contact the server
// (see Check).
func NewS3(ctx context.Context, c S3Config) (*S3, error) {
	_ = ctx
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("s3.endpoint: %v", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("s3.endpoint: %q is not an http:// or https:// URL with a host", c.Endpoint)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("s3.endpoint: %q must not carry credentials, a query or a fragment", c.Endpoint)
		}
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	for _, r := range c.Region {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return nil, fmt.Errorf("s3.region: %q is not a region name (lower-case letters, digits, -)", c.Region)
		}
	}
	if err := validateBucket(c.Bucket); err != nil {
		return nil, fmt.Errorf("s3.bucket: %v", err)
	}
	if c.AccessKey == "" {
		return nil, errors.New("s3.access_key: required")
	}
	if c.SecretKey == "" {
		return nil, errors.New("s3.secret_key: required")
	}
	if !c.PathStyle && strings.Contains(c.Bucket, ".") && !strings.HasPrefix(c.Endpoint, "http:") {
		return nil, fmt.Errorf("s3.bucket: %q contains dots, which breaks TLS with virtual-host addressing; set s3.path_style", c.Bucket)
	}

	cfg := aws.Config{
		Region:      c.Region,
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, ""),
		// Without these the SDK adds CRC checksums that a presigned
		// URL's holder would have to send and some servers reject.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(strings.TrimSuffix(c.Endpoint, "/"))
		}
		o.UsePathStyle = c.PathStyle
	})
	return &S3{client: client, presign: s3.NewPresignClient(client), bucket: c.Bucket}, nil
}

// validateBucket applies S3's bucket naming rules, which every
// S3-compatible server accepts.
func validateBucket(b string) error {
	if b == "" {
		return errors.New("required")
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("%q must be 3 to 63 characters long", b)
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-'
		if !ok || (i == 0 || i == len(b)-1) && (r == '.' || r == '-') {
			return fmt.Errorf("%q must be lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit", b)
		}
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("%q must not contain \"..\"", b)
	}
	return nil
}

// Check verifies that the bucket exists and the credentials work (a
// one-key listing). Call it at start: Head cannot tell an absent object from
// some configuration errors, as a HEAD response has no body (versitygw, for
// one, answers an unknown access key with 404).
func (s *S3) Check(ctx context.Context) error {
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), MaxKeys: aws.Int32(1)})
	if err != nil {
		return fmt.Errorf("media: s3 bucket %s: %w", s.bucket, err)
	}
	return nil
}

// PresignPut signs a PUT of key with exactly size bytes of contentType:
// Content-Length and Content-Type are signed headers, so the holder can
// upload that object and nothing else. A plain net/http PUT with
// Presigned.Header (and ContentLength = size) works; see Presigned.NewRequest.
func (s *S3) PresignPut(ctx context.Context, key string, size int64, contentType string, expiry time.Duration) (Presigned, error) {
	if err := ValidateKey(key); err != nil {
		return Presigned{}, err
	}
	if err := checkPut(size, contentType, MaxPutBytes); err != nil {
		return Presigned{}, err
	}
	if err := checkExpiry(expiry); err != nil {
		return Presigned{}, err
	}
	// SigV4 dates have second precision: the URL expires at the signing
	// second plus expiry, so report a time no later than that.
	expires := time.Now().Truncate(time.Second).Add(expiry)
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(contentType),
	}, s3.WithPresignExpires(expiry))
	if err != nil {
		return Presigned{}, fmt.Errorf("media: presign put %s: %w", key, err)
	}
	// The signature must cover length and type, or the URL would take any
	// upload (the SDK drops both for a zero length, for one).
	if err := signsHeaders(req.URL, "content-length", "content-type"); err != nil {
		return Presigned{}, fmt.Errorf("media: presign put %s: %w", key, err)
	}
	h := clientHeaders(req.SignedHeader)
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	return Presigned{URL: req.URL, Method: req.Method, Header: h, Expires: expires}, nil
}

// PresignGet signs a GET of key (Range requests allowed).
func (s *S3) PresignGet(ctx context.Context, key string, expiry time.Duration) (Presigned, error) {
	if err := ValidateKey(key); err != nil {
		return Presigned{}, err
	}
	if err := checkExpiry(expiry); err != nil {
		return Presigned{}, err
	}
	expires := time.Now().Truncate(time.Second).Add(expiry)
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	}, s3.WithPresignExpires(expiry))
	if err != nil {
		return Presigned{}, fmt.Errorf("media: presign get %s: %w", key, err)
	}
	return Presigned{URL: req.URL, Method: req.Method, Header: clientHeaders(req.SignedHeader), Expires: expires}, nil
}

// signsHeaders checks that a SigV4 presigned URL signs the named headers.
func signsHeaders(rawURL string, names ...string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	signed := strings.Split(u.Query().Get("X-Amz-SignedHeaders"), ";")
	for _, n := range names {
		if !slices.Contains(signed, n) {
			return fmt.Errorf("the presigned URL does not sign %s (signed: %v)", n, signed)
		}
	}
	return nil
}

// clientHeaders is the signed headers minus Host, which the HTTP client
// derives from the URL.
func clientHeaders(signed http.Header) http.Header {
	h := make(http.Header, len(signed))
	for k, vs := range signed {
		if http.CanonicalHeaderKey(k) == "Host" {
			continue
		}
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	return h
}

// Head returns the object's size, ETag, type and modification time; an
// error wrapping ErrNotFound when it does not exist.
func (s *S3) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			// A HEAD response has no body, so an absent bucket or (on
			// versitygw) an unknown access key also reads as 404 NotFound:
			// confirm with a listing, whose errors say what is wrong.
			if lerr := s.confirmAbsent(ctx, key); lerr != nil {
				return ObjectInfo{}, fmt.Errorf("media: head %s: %w", key, lerr)
			}
			return ObjectInfo{}, fmt.Errorf("media: head %s: %w", key, ErrNotFound)
		}
		return ObjectInfo{}, fmt.Errorf("media: head %s: %w", key, err)
	}
	return ObjectInfo{
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         strings.Trim(aws.ToString(out.ETag), `"`),
		ContentType:  aws.ToString(out.ContentType),
		LastModified: aws.ToTime(out.LastModified).UTC(),
	}, nil
}

// confirmAbsent returns nil when the bucket is readable and has no key
// equal to key.
func (s *S3) confirmAbsent(ctx context.Context, key string) error {
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(key), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return err
	}
	if len(out.Contents) > 0 && aws.ToString(out.Contents[0].Key) == key {
		return errors.New("HEAD says not found, but the object is listed (created meanwhile?)")
	}
	return nil
}

// Delete removes the object; nil when it is already absent.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("media: delete %s: %w", key, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf *types.NotFound
	var nk *types.NoSuchKey
	if errors.As(err, &nf) || errors.As(err, &nk) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NotFound", "NoSuchKey":
			return true
		}
	}
	return false
}
