// Package wcdata is the word-count dataset of the benchmarks (bench/wordcount,
// bench/shuffle): deterministic text objects of twelve words a line, words
// drawn from a skewed distribution, so that runs and programs compare.
package wcdata

import "strconv"

// Object returns object i of the dataset: whole lines, at most max bytes.
func Object(i, max int) []byte {
	x := uint64(i + 1)
	buf := make([]byte, 0, max)
	line := make([]byte, 0, 128)
	for {
		line = line[:0]
		for w := 0; w < 12; w++ {
			x = x*6364136223846793005 + 1442695040888963407
			if w > 0 {
				line = append(line, ' ')
			}
			line = append(line, 'w')
			line = strconv.AppendUint(line, ((x>>33)%1000)*((x>>43)%1000)/1000, 10)
		}
		line = append(line, '\n')
		if len(buf)+len(line) > max {
			return buf
		}
		buf = append(buf, line...)
	}
}
