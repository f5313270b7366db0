package main

import (
	"io"
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	twenty := make([]float64, 20)
	for i := range twenty {
		twenty[19-i] = float64(i + 1) // unsorted: 20..1
	}
	for _, tc := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{twenty, 0.5, 10},  // nearest rank ceil(10) = 10th
		{twenty, 0.95, 19}, // ceil(19) = 19th
		{twenty, 1, 20},
		{twenty, 0, 1},
		{[]float64{0.3}, 0.95, 0.3},
	} {
		if got := quantile(tc.xs, tc.q); got != tc.want {
			t.Errorf("quantile(%v, %g) = %g, want %g", tc.xs, tc.q, got, tc.want)
		}
	}
	if !math.IsNaN(quantile(nil, 0.5)) {
		t.Error("quantile of nothing is not NaN")
	}
	if twenty[0] != 20 {
		t.Error("quantile sorted its input in place")
	}
}

func TestParseReady(t *testing.T) {
	for _, tc := range []struct {
		line       string
		ok, failed int
		bad        bool
	}{
		{"ready 200 0", 200, 0, false},
		{"ready 198 2", 198, 2, false},
		{"ready x", 0, 0, true},
		{`{"connected": 1}`, 0, 0, true},
		{"", 0, 0, true},
	} {
		ok, failed, err := parseReady(tc.line)
		if (err != nil) != tc.bad || ok != tc.ok || failed != tc.failed {
			t.Errorf("parseReady(%q) = %d, %d, %v", tc.line, ok, failed, err)
		}
	}
}

func TestParseFlagsRefusesUnbounded(t *testing.T) {
	for _, args := range [][]string{
		{"-runs", "0"}, {"-viewers", "5000"}, {"-window", "1s"}, {"-window", "1h"}, {"-kbps", "0"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.runs != 20 || o.viewers != 200 || o.relayProcs != 1 || o.gop != 50 || o.fps != 25 {
		t.Fatalf("defaults %+v, %v", o, err)
	}
}

func TestLineSplitter(t *testing.T) {
	lines := make(chan string, 4)
	w := &lineSplitter{lines: lines}
	for _, p := range []string{"rea", "dy 1 0\n{\"connected\"", ":1}\npartial"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := <-lines, <-lines; a != "ready 1 0" || b != `{"connected":1}` {
		t.Fatalf("lines %q %q", a, b)
	}
	if len(lines) != 0 {
		t.Fatal("a partial line was handed on")
	}
}

func TestParseRcvbufErrors(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n" +
		"Udp: 1028 0 7 1036 42 0 0 0 0\n" +
		"UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdpLite: 0 0 0 0 9\n"
	if n, err := parseRcvbufErrors(snmp); err != nil || n != 42 {
		t.Fatalf("got %d, %v; want 42", n, err)
	}
	if _, err := parseRcvbufErrors("Ip: Forwarding\nIp: 1\n"); err == nil {
		t.Fatal("no Udp lines: no error")
	}
}
