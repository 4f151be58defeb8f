// Package policies holds podgate's built-in Rego policies, the shared Rego
// library and the shipped configuration defaults, embedded into every binary
// so the webhook runs with no files on disk.
package policies

import "embed"

// FS holds the policy sources: data.yaml (config defaults) and each folder's
// .rego files. Tests and their testdata are embedded too, so `podgate test`
// runs them from any binary; the engine skips them when it compiles.
//
//go:embed data.yaml */*.rego */testdata
var FS embed.FS
