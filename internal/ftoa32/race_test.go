//go:build race

package ftoa32

// The race detector slows the comparison loops by an order of magnitude.
const raceEnabled = true
