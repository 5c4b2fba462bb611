package skinspect

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
	_ "ckpt2csv/convert/sklearn"
)

func TestSpeed(t *testing.T) {
	for _, p := range []string{"big.joblib", "big_z.joblib", "big_p4.pkl", "big_f_p5.pkl"} {
		start := time.Now()
		src := converttest.OpenFile(t, "/tmp/skbig/"+p)
		ck, err := convert.Open(context.Background(), src, "auto", convert.Limits{}.Defaults())
		if err != nil {
			t.Fatal(err)
		}
		open := time.Since(start)
		var n int64
		for i := range ck.Info().Tensors {
			rc, _ := ck.Values(context.Background(), i)
			k, err := io.Copy(io.Discard, rc)
			if err != nil {
				t.Fatal(err)
			}
			n += k
		}
		d := time.Since(start)
		ck.Close()
		fmt.Fprintf(os.Stdout, "%s: open %v, total %v, %.0f MB/s\n", p, open.Round(time.Millisecond), d.Round(time.Millisecond), float64(n)/1e6/d.Seconds())
	}
}
