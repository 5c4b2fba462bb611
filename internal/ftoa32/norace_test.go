//go:build !race

package ftoa32

const raceEnabled = false
