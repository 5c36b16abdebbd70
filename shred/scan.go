package shred

import "bytes"

var (
	envelopeQuoted = []byte(`"` + envelopeField + `"`)
	erasedQuoted   = []byte(`"` + MetadataErased + `"`)
)

// containsEnvelope is a quick test before parsing: sealed data holds the
// envelope's member name as written by Seal.
func containsEnvelope(data []byte) bool { return bytes.Contains(data, envelopeQuoted) }

// containsErased is the same test for the erased flag in metadata.
func containsErased(metadata []byte) bool { return bytes.Contains(metadata, erasedQuoted) }
