package onvif

import "testing"

// FuzzDecodeEnvelope feeds the SOAP answer decoder what a camera (or
// anything at its address) might send.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><trt:GetStreamUriResponse xmlns:trt="x"><trt:MediaUri><tt:Uri>rtsp://a/b</tt:Uri></trt:MediaUri></trt:GetStreamUriResponse></s:Body></s:Envelope>`))
	f.Add([]byte(`<s:Envelope><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code></s:Fault></s:Body></s:Envelope>`))
	f.Add([]byte(`<Envelope><Body><Fault><faultcode>x</faultcode><faultstring>y</faultstring></Fault></Body></Envelope>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r struct {
			URI string `xml:"GetStreamUriResponse>MediaUri>Uri"`
		}
		_ = decodeEnvelope(data, &r)
		if _, err := checkURI("GetStreamUri", r.URI, "rtsp"); err == nil && r.URI == "" {
			t.Fatal("an empty URI passed")
		}
	})
}
