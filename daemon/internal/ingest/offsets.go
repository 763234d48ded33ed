package ingest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/azaion/edge/internal/atomicfile"
)

// OffsetFile is the name of the local offset file under the data root (the
// seed's offset.yaml).
const OffsetFile = "offset.yaml"

// Offset is the content of offset.yaml: the last stream offset whose files
// are durable under the data root.
type Offset struct {
	// Stream is the stream the offset belongs to.
	Stream string `yaml:"stream"`
	// Consumer is the consumer name the broker stores the same offset under.
	Consumer string `yaml:"consumer"`
	// Offset is the last applied offset.
	Offset int64 `yaml:"offset"`
	// Updated is when it was written.
	Updated time.Time `yaml:"updated"`
}

// ReadOffset reads root/offset.yaml; ok is false when there is none.
func ReadOffset(root string) (o Offset, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(root, OffsetFile))
	if errors.Is(err, fs.ErrNotExist) {
		return o, false, nil
	}
	if err != nil {
		return o, false, err
	}
	if err := yaml.Unmarshal(b, &o); err != nil {
		return o, false, fmt.Errorf("%s: %w", filepath.Join(root, OffsetFile), err)
	}
	return o, true, nil
}

// WriteOffset writes root/offset.yaml durably (temp file, fsync, rename, fsync of the folder).
func WriteOffset(root string, o Offset) error {
	b, err := yaml.Marshal(o)
	if err != nil {
		return err
	}
	b = append([]byte("# written by azaion ingest: the last stream offset whose files are durable here\n"), b...)
	return writeFileAtomic(filepath.Join(root, OffsetFile), b)
}

// writeFileAtomic writes path atomically, then fsyncs its folder.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}
