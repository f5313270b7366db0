package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
)

// httpError is an error with the status and the message the client gets.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.code, e.msg) }

func errorf(code int, format string, a ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, a...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Answers carry tokens and presigned URLs: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="relay"`)
	}
	writeJSON(w, code, proto.Error{Error: msg})
}

// decodeJSON reads exactly one JSON object into v, refusing unknown fields,
// and turns every failure into a client error that says what is wrong
// without Go type names. The body is already limited (ServeHTTP).
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/json, got %q", ct)
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return errorf(http.StatusBadRequest, "body must hold exactly one JSON object, found more after it")
	}
	return nil
}

func jsonError(err error) error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		timeErr   *time.ParseError
	)
	msg := strings.TrimPrefix(err.Error(), "json: ")
	switch {
	case errors.As(err, &maxErr):
		return errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", maxErr.Limit)
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "empty body: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "malformed JSON: the body ends in the middle of a value")
	case errors.As(err, &syntaxErr):
		return errorf(http.StatusBadRequest, "malformed JSON at byte %d: %s", syntaxErr.Offset, msg)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return errorf(http.StatusBadRequest, "%s: want %s, got a JSON %s", field, kindName(typeErr.Type), typeErr.Value)
	case errors.As(err, &timeErr):
		return errorf(http.StatusBadRequest, "bad time %q: want RFC 3339, e.g. 2026-11-25T10:00:00.000Z", timeErr.Value)
	case strings.HasPrefix(err.Error(), "Time.UnmarshalJSON"):
		return errorf(http.StatusBadRequest, "bad time: want an RFC 3339 string, e.g. \"2026-11-25T10:00:00Z\"")
	case strings.HasPrefix(msg, "unknown field "):
		return errorf(http.StatusBadRequest, "%s", msg)
	}
	return errorf(http.StatusBadRequest, "bad JSON: %s", msg)
}

// kindName says what JSON a Go type wants, in the client's terms.
func kindName(t reflect.Type) string {
	if t == reflect.TypeOf(time.Time{}) {
		return "an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}
