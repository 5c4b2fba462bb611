// Protobuf builders and hashing helpers for the tests.
package onnx_test

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"google.golang.org/protobuf/encoding/protowire"
)

// tensor encodes a TensorProto with raw_data.
func tensor(name string, dtype int, dims []int64, data []byte) []byte {
	var b []byte
	for _, d := range dims {
		b = protowire.AppendVarint(protowire.AppendTag(b, 1, protowire.VarintType), uint64(d))
	}
	b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), uint64(dtype))
	if name != "" {
		b = protowire.AppendBytes(protowire.AppendTag(b, 8, protowire.BytesType), []byte(name))
	}
	return protowire.AppendBytes(protowire.AppendTag(b, 9, protowire.BytesType), data)
}

// model encodes a ModelProto around an encoded GraphProto.
func model(graph []byte) []byte {
	b := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 8)
	b = protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), []byte("test"))
	return protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), graph)
}

func raw(n int) []byte { return make([]byte, n) }

func le64(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }

type hasher struct{ h hash.Hash }

func newHasher() *hasher                      { return &hasher{sha256.New()} }
func (h *hasher) Write(p []byte) (int, error) { return h.h.Write(p) }
func (h *hasher) sum() []byte                 { return h.h.Sum(nil) }

func sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
