package skinspect

import (
	"context"
	"fmt"
	"os"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
	_ "ckpt2csv/convert/sklearn"
)

func TestInspect(t *testing.T) {
	for _, p := range []string{os.Getenv("F")} {
		src := converttest.OpenFile(t, p)
		ck, err := convert.Open(context.Background(), src, "auto", convert.Limits{}.Defaults())
		if err != nil {
			fmt.Println("ERR", err)
			continue
		}
		info := ck.Info()
		fmt.Println(info.Format, info.Metadata)
		for i, tn := range info.Tensors {
			b := converttest.Values(t, ck, i)
			fmt.Printf("%-50s %-10s %-8s %v %s\n", tn.Name, tn.LayerType, tn.DType, tn.Shape, converttest.SHA256(tn.DType, b)[:12])
		}
		for _, s := range info.Skipped {
			fmt.Println("skip", s.Name, "-", s.Reason)
		}
		ck.Close()
	}
}
