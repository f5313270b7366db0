package config

import "github.com/zipnvr/zipnvr/pkg/yamlconf"

// ByteSize is a size in bytes that YAML may write as 1MiB, 500KB or 1048576.
type ByteSize = yamlconf.ByteSize

// ParseByteSize parses "1MiB", "500 KB", "1048576".
var ParseByteSize = yamlconf.ParseByteSize
