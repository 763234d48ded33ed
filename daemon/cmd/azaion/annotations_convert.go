package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/azaion/edge/daemon/cmd/azaion/internal/datatools"
)

func init() {
	register(&command{Name: "annotations convert", Summary: "convert annotations: COCO JSON or Pascal VOC XML to YOLO, YOLO to COCO", Run: runAnnotationsConvert})
}

func runAnnotationsConvert(_ context.Context, args []string) error {
	fs := newFlags("annotations convert")
	from := fs.String("from", "", "source format: coco, voc or yolo")
	to := fs.String("to", "", "target format: yolo or coco")
	maps := fs.String("map", "", "extra class names, NAME=ID[,NAME=ID...] (Azaion class names are known)")
	byID := fs.Bool("by-id", false, "COCO to YOLO: keep category ids as class ids instead of mapping names")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: azaion annotations convert -from FORMAT -to FORMAT SRC DST

  -from coco -to yolo  SRC = COCO .json file,             DST = folder for the label files
  -from voc  -to yolo  SRC = VOC .xml file or folder,      DST = folder for the label files
  -from yolo -to coco  SRC = folder with images/, labels/, DST = COCO .json file`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErrorf("want SRC and DST: azaion annotations convert -from FORMAT -to FORMAT SRC DST")
	}
	extra := map[string]int{}
	if *maps != "" {
		for _, kv := range strings.Split(*maps, ",") {
			name, id, ok := strings.Cut(kv, "=")
			n, err := strconv.Atoi(id)
			if !ok || err != nil || n < 0 || n >= 80 {
				return usageErrorf("-map %q: want NAME=ID with ID in 0..79", kv)
			}
			extra[strings.TrimSpace(name)] = n
		}
	}
	mapper := datatools.ByName(extra)
	if *byID {
		mapper = datatools.ByID
	}
	src, dst := fs.Arg(0), fs.Arg(1)
	var (
		st  datatools.ConvertStats
		err error
	)
	switch *from + ">" + *to {
	case "coco>yolo":
		st, err = datatools.COCOToYOLO(src, dst, mapper)
	case "voc>yolo":
		st, err = datatools.VOCToYOLO(src, dst, mapper)
	case "yolo>coco":
		st, err = datatools.YOLOToCOCO(src, dst)
	default:
		return usageErrorf("-from %q -to %q: supported are coco->yolo, voc->yolo and yolo->coco", *from, *to)
	}
	if err != nil {
		return err
	}
	fmt.Printf("converted %d images, %d boxes: %s -> %s\n", st.Images, st.Boxes, src, dst)
	return nil
}
