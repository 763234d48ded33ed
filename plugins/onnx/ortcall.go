package onnx

/*
#include <stdlib.h>

// onnxruntime_go's C wrapper, linked into the same binary: it calls the
// OrtApi of the runtime library onnxruntime_go loaded.
extern void *RunOrtSessionWithOptions(void *session, void **inputs, char **input_names, int input_count,
                                      void **outputs, char **output_names, int output_count, void *run_options);
extern const char *GetErrorMessage(void *status);
extern void ReleaseOrtStatus(void *status);

// ortrun is one session run with one input and one output.
typedef struct {
	void *session, *in, *out, *status;
	char *in_name, *out_name;
} ortrun;

void ortrun_call(void *arg) {
	ortrun *r = arg;
	r->status = RunOrtSessionWithOptions(r->session, &r->in, &r->in_name, 1, &r->out, &r->out_name, 1, NULL);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/azaion/edge/plugins/internal/cthread"
)

// runThread runs a lane's session calls on a kept thread of its own
// (plugins/internal/cthread: while the session runs, the lane's goroutine
// waits in the network poller, not in a cgo call, so Go's sysmon does not
// keep preempting the runtime's threads).
type runThread struct {
	t *cthread.Thread
	r *C.ortrun // C memory: the thread reads it after the submitting call returns
}

// newRunThread starts a thread for runs of sess with the named input and
// output.
func newRunThread(sess *ort.DynamicAdvancedSession, in, out string) (*runThread, error) {
	t, err := cthread.New()
	if err != nil {
		return nil, err
	}
	r := (*C.ortrun)(C.calloc(1, C.size_t(unsafe.Sizeof(C.ortrun{}))))
	if r == nil {
		t.Close()
		return nil, errors.New("onnx: no memory for a run thread")
	}
	r.session = sessionHandle(sess)
	r.in_name, r.out_name = C.CString(in), C.CString(out)
	return &runThread{t: t, r: r}, nil
}

// run runs the session on in, writing out (both tensors the caller keeps).
func (rt *runThread) run(in, out ort.Value) error {
	rt.r.in, rt.r.out, rt.r.status = valueHandle(in), valueHandle(out), nil
	err := rt.t.Call(unsafe.Pointer(C.ortrun_call), unsafe.Pointer(rt.r))
	runtime.KeepAlive(in)
	runtime.KeepAlive(out)
	if err != nil {
		return err
	}
	if st := rt.r.status; st != nil {
		msg := C.GoString(C.GetErrorMessage(st))
		C.ReleaseOrtStatus(st)
		// As onnxruntime_go words a failed Run.
		return fmt.Errorf("Error running network: %s", msg)
	}
	return nil
}

func (rt *runThread) close() {
	rt.t.Close()
	C.free(unsafe.Pointer(rt.r.in_name))
	C.free(unsafe.Pointer(rt.r.out_name))
	C.free(unsafe.Pointer(rt.r))
}

// sessionHandle is sess's OrtSession pointer. onnxruntime_go v1.27.0 keeps
// it unexported, as the first field of the AdvancedSession that is the
// first field of a DynamicAdvancedSession; TestRunThread checks a run
// through it against sess.Run.
func sessionHandle(sess *ort.DynamicAdvancedSession) unsafe.Pointer {
	return (*struct{ s *struct{ p unsafe.Pointer } })(unsafe.Pointer(sess)).s.p
}

// valueHandle is v's OrtValue pointer, the one field of the
// ValueInternalData onnxruntime_go hands out.
func valueHandle(v ort.Value) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(v.GetInternals()))
}
