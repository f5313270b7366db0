package camera

import (
	"net/url"
	"strings"
	"testing"
)

func TestLogURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"http://192.168.1.5/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=s3cr%26t", "http://192.168.1.5/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&pwd=xxxxx&usr=admin"},
		{"http://admin:secret@cam/ISAPI/Streaming/channels/101/picture", "http://admin:xxxxx@cam/ISAPI/Streaming/channels/101/picture"},
		{"rtsp://cam:554/live?user=a&password=b&channel=1", "rtsp://cam:554/live?channel=1&password=xxxxx&user=a"},
		{"http://cam/snap.jpg?loginPass=x&apiKey=y&token=z&sig=w", "http://cam/snap.jpg?apiKey=xxxxx&loginPass=xxxxx&sig=xxxxx&token=xxxxx"},
		{"http://cam/mjpeg?resolution=640x480", "http://cam/mjpeg?resolution=640x480"},
		{"http://cam/mjpeg", "http://cam/mjpeg"},
		{"http://cam/x?%zz=secret", "http://cam/x?xxxxx"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := LogURL(u); got != tc.want {
			t.Errorf("LogURL(%s) = %s, want %s", tc.in, got, tc.want)
		}
		if strings.Contains(LogURL(u), "secret") || strings.Contains(LogURL(u), "s3cr") {
			t.Errorf("LogURL(%s) leaks the secret", tc.in)
		}
	}
	if LogURL(nil) != "" {
		t.Error("LogURL(nil) not empty")
	}
}
