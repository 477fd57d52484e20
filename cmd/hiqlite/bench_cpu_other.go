//go:build !unix

package main

import "time"

// processCPU returns 0: the CPU time of the process is not known here, and
// the bench reports none.
func processCPU() time.Duration { return 0 }

// processPeakRSS returns 0: the peak RSS of the process is not known here, and
// the bench reports none.
func processPeakRSS() int64 { return 0 }
