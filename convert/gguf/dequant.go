package gguf

// Dequantization of ggml block types, one block at a time, following ggml's
// reference code (ggml/src/ggml-quants.c, dequantize_row_*) operation for
// operation: float16 scales widened exactly, float32 arithmetic in the same
// order. Every product that C rounds before an add or subtract is wrapped in
// an explicit float32() conversion, which the Go spec defines as a rounding
// point, so the compiler may not fuse it into an FMA and change the result.
//
// Each function reads exactly the block layout of ggml-common.h and writes
// exactly blck values; callers pass slices of exactly that length, so a
// block of random bytes can give NaN or Inf but never an out-of-range index.

import (
	"encoding/binary"
	"math"

	"ckpt2csv/convert"
)

func f16(b []byte) float32 { return convert.Float16To32(binary.LittleEndian.Uint16(b)) }

// block_q4_0: d f16, qs[16] (low nibbles: values 0..15, high nibbles: 16..31).
func dequantQ4_0(b []byte, y []float32) {
	d := f16(b[0:])
	qs := b[2:18]
	for j := 0; j < 16; j++ {
		x0 := int(qs[j]&0x0F) - 8
		x1 := int(qs[j]>>4) - 8
		y[j] = float32(x0) * d
		y[j+16] = float32(x1) * d
	}
}

// block_q4_1: d f16, m f16, qs[16].
func dequantQ4_1(b []byte, y []float32) {
	d, m := f16(b[0:]), f16(b[2:])
	qs := b[4:20]
	for j := 0; j < 16; j++ {
		x0 := int(qs[j] & 0x0F)
		x1 := int(qs[j] >> 4)
		y[j] = float32(float32(x0)*d) + m
		y[j+16] = float32(float32(x1)*d) + m
	}
}

// block_q5_0: d f16, qh[4] (the fifth bits, little-endian u32), qs[16].
func dequantQ5_0(b []byte, y []float32) {
	d := f16(b[0:])
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	for j := 0; j < 16; j++ {
		xh0 := uint8((qh>>uint(j))<<4) & 0x10
		xh1 := uint8(qh>>uint(j+12)) & 0x10
		x0 := int32((qs[j]&0x0F)|xh0) - 16
		x1 := int32((qs[j]>>4)|xh1) - 16
		y[j] = float32(x0) * d
		y[j+16] = float32(x1) * d
	}
}

// block_q5_1: d f16, m f16, qh[4], qs[16].
func dequantQ5_1(b []byte, y []float32) {
	d, m := f16(b[0:]), f16(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	for j := 0; j < 16; j++ {
		xh0 := uint8((qh>>uint(j))<<4) & 0x10
		xh1 := uint8(qh>>uint(j+12)) & 0x10
		x0 := int((qs[j] & 0x0F) | xh0)
		x1 := int((qs[j] >> 4) | xh1)
		y[j] = float32(float32(x0)*d) + m
		y[j+16] = float32(float32(x1)*d) + m
	}
}

// block_q8_0: d f16, qs[32] int8.
func dequantQ8_0(b []byte, y []float32) {
	d := f16(b[0:])
	for j, q := range b[2:34] {
		y[j] = float32(int8(q)) * d
	}
}

// block_q8_1: d f16, s f16 (d * sum(qs), for dot products), qs[32] int8.
// ggml has no dequantize_row_q8_1 (Q8_1 is an activation format); the
// values are qs*d, the inverse of quantize_row_q8_1_ref, as for Q8_0.
func dequantQ8_1(b []byte, y []float32) {
	d := f16(b[0:])
	for j, q := range b[4:36] {
		y[j] = float32(int8(q)) * d
	}
}

// block_q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d f16, dmin f16.
func dequantQ2_K(b []byte, y []float32) {
	scales := b[0:16]
	q := b[16:80]
	d, min := f16(b[80:]), f16(b[82:])
	is, k := 0, 0
	for n := 0; n < qkK; n += 128 {
		shift := uint(0)
		for j := 0; j < 4; j++ {
			sc := scales[is]
			is++
			dl, ml := d*float32(sc&0xF), min*float32(sc>>4)
			for l := 0; l < 16; l++ {
				y[k] = float32(dl*float32(int8((q[l]>>shift)&3))) - ml
				k++
			}
			sc = scales[is]
			is++
			dl, ml = d*float32(sc&0xF), min*float32(sc>>4)
			for l := 0; l < 16; l++ {
				y[k] = float32(dl*float32(int8((q[l+16]>>shift)&3))) - ml
				k++
			}
			shift += 2
		}
		q = q[32:]
	}
}

// block_q3_K: hmask[32], qs[64], scales[12] (16 six-bit scales), d f16.
func dequantQ3_K(b []byte, y []float32) {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	hm := b[0:32]
	q := b[32:96]
	dAll := f16(b[108:])

	aux0 := binary.LittleEndian.Uint32(b[96:])
	aux1 := binary.LittleEndian.Uint32(b[100:])
	tmp := binary.LittleEndian.Uint32(b[104:])
	var aux [4]uint32
	aux[2] = ((aux0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
	aux[3] = ((aux1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
	aux[0] = (aux0 & kmask2) | (((tmp >> 0) & kmask1) << 4)
	aux[1] = (aux1 & kmask2) | (((tmp >> 2) & kmask1) << 4)
	var scales [16]int8 // the bytes of aux as C reads them on a little-endian host
	for i, a := range aux {
		for j := 0; j < 4; j++ {
			scales[4*i+j] = int8(a >> (8 * j))
		}
	}

	is, k := 0, 0
	m := uint8(1)
	for n := 0; n < qkK; n += 128 {
		shift := uint(0)
		for j := 0; j < 4; j++ {
			dl := dAll * float32(int(scales[is])-32)
			is++
			for l := 0; l < 16; l++ {
				y[k] = dl * float32(q3(q[l], hm[l], shift, m))
				k++
			}
			dl = dAll * float32(int(scales[is])-32)
			is++
			for l := 0; l < 16; l++ {
				y[k] = dl * float32(q3(q[l+16], hm[l+16], shift, m))
				k++
			}
			shift += 2
			m <<= 1
		}
		q = q[32:]
	}
}

// q3 is one Q3_K quant: two low bits, minus 4 unless the high-mask bit is set.
func q3(q, hm uint8, shift uint, m uint8) int {
	v := int(int8((q >> shift) & 3))
	if hm&m == 0 {
		v -= 4
	}
	return v
}

// scaleMinK4 is get_scale_min_k4: the j-th six-bit scale and min of a Q4_K/Q5_K block.
func scaleMinK4(j int, q []byte) (d, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

// block_q4_K: d f16, dmin f16, scales[12], qs[128].
func dequantQ4_K(b []byte, y []float32) {
	d, min := f16(b[0:]), f16(b[2:])
	scales := b[4:16]
	q := b[16:144]
	is, k := 0, 0
	for j := 0; j < qkK; j += 64 {
		sc, m := scaleMinK4(is+0, scales)
		d1, m1 := d*float32(sc), min*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), min*float32(m)
		for l := 0; l < 32; l++ {
			y[k] = float32(d1*float32(q[l]&0xF)) - m1
			k++
		}
		for l := 0; l < 32; l++ {
			y[k] = float32(d2*float32(q[l]>>4)) - m2
			k++
		}
		q = q[32:]
		is += 2
	}
}

// block_q5_K: d f16, dmin f16, scales[12], qh[32], qs[128].
func dequantQ5_K(b []byte, y []float32) {
	d, min := f16(b[0:]), f16(b[2:])
	scales := b[4:16]
	qh := b[16:48]
	ql := b[48:176]
	is, k := 0, 0
	u1, u2 := uint8(1), uint8(2)
	for j := 0; j < qkK; j += 64 {
		sc, m := scaleMinK4(is+0, scales)
		d1, m1 := d*float32(sc), min*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), min*float32(m)
		for l := 0; l < 32; l++ {
			v := int(ql[l] & 0xF)
			if qh[l]&u1 != 0 {
				v += 16
			}
			y[k] = float32(d1*float32(v)) - m1
			k++
		}
		for l := 0; l < 32; l++ {
			v := int(ql[l] >> 4)
			if qh[l]&u2 != 0 {
				v += 16
			}
			y[k] = float32(d2*float32(v)) - m2
			k++
		}
		ql = ql[32:]
		is += 2
		u1 <<= 2
		u2 <<= 2
	}
}

// block_q6_K: ql[128], qh[64], scales[16] int8, d f16.
func dequantQ6_K(b []byte, y []float32) {
	ql := b[0:128]
	qh := b[128:192]
	sc := b[192:208]
	d := f16(b[208:])
	for n := 0; n < qkK; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(int8((ql[l+0]&0xF)|((qh[l]>>0)&3)<<4)) - 32
			q2 := int(int8((ql[l+32]&0xF)|((qh[l]>>2)&3)<<4)) - 32
			q3 := int(int8((ql[l+0]>>4)|((qh[l]>>4)&3)<<4)) - 32
			q4 := int(int8((ql[l+32]>>4)|((qh[l]>>6)&3)<<4)) - 32
			// C: d * sc[is] * q, evaluated left to right, each product rounded.
			y[n+l+0] = float32(d*float32(int8(sc[is+0]))) * float32(q1)
			y[n+l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
			y[n+l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
			y[n+l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
		}
		ql = ql[64:]
		qh = qh[32:]
		sc = sc[8:]
	}
}

// block_q8_K: d f32, qs[256] int8, bsums[16] int16 (sums for dot products).
func dequantQ8_K(b []byte, y []float32) {
	d := math.Float32frombits(binary.LittleEndian.Uint32(b[0:]))
	for j, q := range b[4 : 4+qkK] {
		y[j] = d * float32(int8(q))
	}
}
