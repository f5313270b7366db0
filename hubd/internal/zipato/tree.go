// Package zipato connects hubd to a Zipato box: it reads the box's device
// tree (a JSON file or the box's MQTT request/response API) into cameras,
// publishes camera state and takes commands over MQTT in the box's conventions.
package zipato

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// CameraClass is the class of a camera endpoint in the device tree.
const CameraClass = "com.zipato.network.ip.IP"

// IPNetwork is the name of the network IP devices live under.
const IPNetwork = "IP"

// MaxTreeBytes bounds a device tree file or one MQTT answer: a box with a
// few hundred devices dumps a few MiB.
const MaxTreeBytes = 16 << 20

// Tree is a box's device tree: networks{uuid -> {config, devices{uuid ->
// {config, endpoints{uuid -> {config, clusterEndpoints{...}}}}}}}. Lists
// may be written as objects keyed by UUID (a full dump) or as arrays of
// entities carrying their uuid (the MQTT API's info answers).
type Tree struct {
	BoxSerial string             `json:"boxSerial"`
	Networks  Entities[*Network] `json:"networks"`
}

// Network is one network of the box (IP, mqtt, zwave...).
type Network struct {
	UUID    string            `json:"uuid"`
	Name    string            `json:"name"` // in references; full entities have config.name
	Config  Props             `json:"config"`
	Devices Entities[*Device] `json:"devices"`
}

// Device is one device; IP devices carry discoveredIp, mac, discoveryInfo.
type Device struct {
	UUID      string              `json:"uuid"`
	Name      string              `json:"name"`
	Config    Props               `json:"config"`
	State     Props               `json:"state"`
	Endpoints Entities[*Endpoint] `json:"endpoints"`
}

// Endpoint is one function of a device; a camera is an endpoint of class
// com.zipato.network.ip.IP.
type Endpoint struct {
	UUID             string                     `json:"uuid"`
	Name             string                     `json:"name"`
	Config           Props                      `json:"config"`
	ClusterClass     string                     `json:"clusterClass"`
	ClusterEndpoints Entities[*ClusterEndpoint] `json:"clusterEndpoints"`
}

// ClusterEndpoint is one cluster of an endpoint; its class says what it is.
type ClusterEndpoint struct {
	UUID         string `json:"uuid"`
	Name         string `json:"name"`
	Config       Props  `json:"config"`
	ClusterClass string `json:"clusterClass"`
}

// Props is an entity's flat key/value configuration. Values are what JSON
// gave: strings, json.Number, bools, nested maps, nil.
type Props map[string]any

// UnmarshalJSON accepts an object or null; numbers stay json.Number.
func (c *Props) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*c = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("config is not a JSON object: %w", err)
	}
	*c = m
	return nil
}

// String returns key's value as text ("" when absent, null, or not a scalar).
func (c Props) String(key string) string {
	switch v := c[key].(type) {
	case string:
		return strings.TrimSpace(v)
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

// Map returns key's value as Props when it is an object.
func (c Props) Map(key string) Props {
	if m, ok := c[key].(map[string]any); ok {
		return m
	}
	return nil
}

// Name is the entity's display name.
func (c Props) Name() string { return c.String("name") }

// IsIP says whether this is the network IP devices (cameras) live under.
func (n *Network) IsIP() bool {
	return strings.EqualFold(n.Config.Name(), IPNetwork) || strings.EqualFold(n.Name, IPNetwork)
}

// Deleted says whether the box marked the entity deleted or disabled.
func (c Props) Deleted() bool {
	return c.String("deleted") == "true" || strings.EqualFold(c.String("status"), "DISABLED")
}

// Entities is a list of entities keyed by UUID, written in JSON either as
// an object keyed by UUID or as an array of entities with a "uuid".
type Entities[T any] map[string]T

// UnmarshalJSON implements both forms.
func (e *Entities[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	out := Entities[T]{}
	switch {
	case bytes.Equal(b, []byte("null")):
	case len(b) > 0 && b[0] == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		for k, raw := range m {
			v, id, err := decodeEntity[T](raw)
			if err != nil {
				return fmt.Errorf("%s: %w", clip(k), err)
			}
			if id == "" {
				id = k
			}
			out[id] = v
		}
	case len(b) > 0 && b[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		for i, raw := range list {
			v, id, err := decodeEntity[T](raw)
			if err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
			if id == "" {
				return fmt.Errorf("[%d]: entity without uuid", i)
			}
			out[id] = v
		}
	default:
		return fmt.Errorf("want an object keyed by uuid or an array, got %s", clip(string(b)))
	}
	*e = out
	return nil
}

func decodeEntity[T any](raw json.RawMessage) (T, string, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, "", err
	}
	var id struct {
		UUID any `json:"uuid"`
	}
	_ = json.Unmarshal(raw, &id)
	s, _ := id.UUID.(string)
	return v, s, nil
}

// Sorted returns the UUIDs in order, so that output is stable.
func (e Entities[T]) Sorted() []string {
	ids := make([]string, 0, len(e))
	for id := range e {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ParseTree decodes a device tree in the sample's shape.
func ParseTree(data []byte) (*Tree, error) {
	if len(data) > MaxTreeBytes {
		return nil, fmt.Errorf("device tree of %d bytes, more than %d", len(data), MaxTreeBytes)
	}
	var t Tree
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("device tree: %w", describeJSONError(data, err))
	}
	if t.Networks == nil {
		return nil, errors.New("device tree: no \"networks\"")
	}
	return &t, nil
}

// describeJSONError adds the line of a syntax error: an operator fixes a
// file by its line.
func describeJSONError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset <= int64(len(data)) {
		line := 1 + bytes.Count(data[:se.Offset], []byte("\n"))
		return fmt.Errorf("line %d: %w", line, err)
	}
	return err
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
