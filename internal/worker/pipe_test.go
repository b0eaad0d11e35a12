package worker

import (
	"io"
	"os"
)

// ioPipe is a real pipe, as stdin is in production.
func ioPipe() (io.Reader, io.WriteCloser) {
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	return r, w
}
