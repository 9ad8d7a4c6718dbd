// Package h2client is the HTTP/2 client the proxy uses to reach h2c
// backends (gRPC over clear text, prior knowledge: the connection starts
// with the client preface, no Upgrade).
//
// It replaces net/http's HTTP/2 Transport on that path, which per request
// started a goroutine to write the request, built and validated the head
// field by field with Huffman coding, and moved the response body through
// a pipe: about two fifths of the proxy's CPU per gRPC call. Here a
// request's head is written by the goroutine that calls RoundTrip, with
// literal fields and no dynamic table (as nginx's and HAProxy's encoders
// send a backend's requests); a body gets a goroutine of its own only when
// it is not all in memory already; the reader decodes header blocks into a
// field slice it keeps; and the response body is the stream itself.
//
// Every buffer and wait is bounded: a stream buffers at most its receive
// window (Options.StreamWindow), a connection opens at most
// Options.MaxStreamsPerConn streams, a response head is bounded by
// Options.MaxResponseHeaderBytes and 256 CONTINUATION frames, and waits end
// with the request's context.
package h2client
