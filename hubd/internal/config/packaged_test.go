package config

import "testing"

// The packaged default config documents every key: it must load and equal
// the built-in defaults.
func TestPackagedConfigIsTheDefaults(t *testing.T) {
	cfg, err := Load("../../../packaging/hubd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	d.applyDefaults()
	if cfg.Hub != d.Hub || cfg.Recording != d.Recording || cfg.Log != d.Log || cfg.Templates != d.Templates || len(cfg.Cameras) != 0 ||
		cfg.Zipato != d.Zipato || cfg.ONVIF != d.ONVIF || cfg.PTZ != d.PTZ {
		t.Errorf("packaging/hubd.yaml differs from Defaults():\n%+v\n%+v", cfg, d)
	}
}
