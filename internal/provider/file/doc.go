// Package file is the file provider: it reads Gateway API manifests (and the
// Services, EndpointSlices, Secrets and Namespaces they refer to) from a file
// or a folder into a resources.Resources snapshot, and watches them for
// changes.
//
// Decoding is strict, like the API server's: an unknown or misspelled field,
// a value of the wrong type, or a key given twice is an error that names the
// file, the line, the object and the field path. Every problem in every file
// is reported at once (errors.Join), so one run shows all the mistakes; the
// caller keeps serving its last good snapshot meanwhile.
//
// Documents in the plain block style tools write are read by a fast path
// (block.go) into the same trees yaml.v3 builds; everything else, and every
// error, is yaml.v3's.
package file
