package api

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const openapiFile = "../../openapi.yaml"

type openapiDoc struct {
	OpenAPI    string                    `yaml:"openapi"`
	Security   []map[string][]string     `yaml:"security"`
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `yaml:"type"`
			Scheme string `yaml:"scheme"`
		} `yaml:"securitySchemes"`
		Parameters map[string]struct {
			Name string `yaml:"name"`
			In   string `yaml:"in"`
		} `yaml:"parameters"`
	} `yaml:"components"`
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// TestOpenAPIMatchesRoutes: every route of the router is in openapi.yaml,
// with its method and path, and every operation there is a route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile(openapiFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc openapiDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Fatalf("openapi: %q, want 3.0.x", doc.OpenAPI)
	}
	if s := doc.Components.SecuritySchemes["bearer"]; s.Type != "http" || s.Scheme != "bearer" || len(doc.Security) != 1 {
		t.Fatalf("securitySchemes.bearer %+v, security %v: want a global http bearer scheme", s, doc.Security)
	}

	documented := map[string]map[string]any{} // "GET /path" -> operation
	for path, item := range doc.Paths {
		for method, op := range item {
			if slices.Contains(httpMethods, method) {
				documented[strings.ToUpper(method)+" "+path], _ = op.(map[string]any)
			}
		}
	}
	routes := map[string]Route{}
	for _, rt := range Routes() {
		routes[rt.Method+" "+rt.Path] = rt
	}
	for k, rt := range routes {
		op, ok := documented[k]
		if !ok {
			t.Errorf("route %s is not in openapi.yaml", k)
			continue
		}
		sec, hasSec := op["security"]
		switch {
		case rt.Public && (!hasSec || len(sec.([]any)) != 0):
			t.Errorf("%s: public route without security: []", k)
		case !rt.Public && hasSec:
			t.Errorf("%s: overrides the bearer security", k)
		}
		resp, _ := op["responses"].(map[string]any)
		if len(resp) == 0 {
			t.Errorf("%s: no responses", k)
		}
		if !rt.Public && (resp["401"] == nil || resp["403"] == nil) {
			t.Errorf("%s: 401 and 403 not documented", k)
		}
		pathParams := map[string]bool{}
		for _, params := range []any{doc.Paths[rt.Path]["parameters"], op["parameters"]} {
			for _, p := range asList(params) {
				m := p.(map[string]any)
				if ref, ok := m["$ref"].(string); ok {
					c, ok := doc.Components.Parameters[strings.TrimPrefix(ref, "#/components/parameters/")]
					if !ok {
						t.Errorf("%s: dangling %s", k, ref)
					}
					m = map[string]any{"name": c.Name, "in": c.In}
				}
				if m["in"] == "path" {
					pathParams[m["name"].(string)] = true
				}
			}
		}
		for _, w := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(rt.Path, -1) {
			if !pathParams[w[1]] {
				t.Errorf("%s: path parameter %s not documented", k, w[1])
			}
		}
	}
	for k := range documented {
		if _, ok := routes[k]; !ok {
			t.Errorf("openapi.yaml documents %s, which the router does not have", k)
		}
	}

	// Every $ref points at something.
	var all map[string]any
	yaml.Unmarshal(raw, &all)
	for _, ref := range regexp.MustCompile(`\$ref: "#/([^"]+)"`).FindAllStringSubmatch(string(raw), -1) {
		var node any = all
		for _, part := range strings.Split(ref[1], "/") {
			m, _ := node.(map[string]any)
			node = m[part]
		}
		if node == nil {
			t.Errorf("dangling $ref #/%s", ref[1])
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
