package main

// The workload shared with the Rust side (bench-suite/src/lib.rs): SplitMix64 seeded with
// the ASCII bytes of "MUKAN-11"; each message size takes one output r:
// k = r % (maxLog2+1), size = (r >> 32) % (1 << k). Both sides check the first sizes
// against bench-suite/workload-sizes.txt.

const (
	workloadSeed uint64 = 0x4d554b414e2d3131
	maxLog2      uint64 = 16
)

type splitMix64 struct{ state uint64 }

func (g *splitMix64) next() uint64 {
	g.state += 0x9e3779b97f4a7c15
	z := g.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// workloadSizes returns the first n sizes of the sequence.
func workloadSizes(n int) []int {
	g := splitMix64{state: workloadSeed}
	out := make([]int, n)
	for i := range out {
		r := g.next()
		k := r % (maxLog2 + 1)
		out[i] = int((r >> 32) % (uint64(1) << k))
	}
	return out
}
