package harness

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorKind classifies a failed Publish for the report: the name of its
// gRPC code when it carries one ("ResourceExhausted" for a system that
// refuses because it is saturated, "Unavailable", …), "DeadlineExceeded"
// or "Canceled" for a context error without one, else "other". This
// project's errors carry their code in-process too (GRPCStatus), so
// errors.Is on its sentinels and the code agree.
func ErrorKind(err error) string {
	switch c := status.Code(err); {
	case err == nil:
		return ""
	case c != codes.Unknown && c != codes.OK:
		return c.String()
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded.String()
	case errors.Is(err, context.Canceled):
		return codes.Canceled.String()
	}
	return "other"
}
