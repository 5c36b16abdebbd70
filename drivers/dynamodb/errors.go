package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/eventkit/eventstore"
)

// errorClass is what the driver does about a native error, or about one
// item's reason in a cancelled transaction.
type errorClass int

const (
	classOther errorClass = iota
	// classNone: a transaction item that did not cause the cancellation.
	classNone
	// classConflict: a condition failed (ConditionalCheckFailedException, or
	// ConditionalCheckFailed for one item of a transaction). On an event item
	// or the check of the stream's previous version, a concurrent append took
	// the version: the append is evaluated again and either succeeds (Any,
	// StreamExists, a retry of that very append) or returns a
	// *WrongExpectedVersionError with the actual version. On the log entry,
	// another writer took the position: the driver finds the new head of the
	// log and tries again.
	classConflict
	// classRetry: throttling (ProvisionedThroughputExceeded, ThrottlingError,
	// RequestLimitExceeded), a TransactionConflict, a 5xx or a broken
	// connection. Nothing was written, or a transaction whose outcome is
	// unknown is sent again with the same ClientRequestToken, which DynamoDB
	// applies at most once. Tried up to Options.MaxAttempts times.
	classRetry
	// classInvalid: ValidationException or an item's ValidationError, such
	// as an item over 400 KB. Reported as eventstore.ErrInvalidArgument.
	classInvalid
)

// Cancellation reason codes of TransactionCanceledException, per item in
// request order.
const (
	reasonNone              = "None"
	reasonConditionalCheck  = "ConditionalCheckFailed"
	reasonTransactConflict  = "TransactionConflict"
	reasonThroughput        = "ProvisionedThroughputExceeded"
	reasonThrottling        = "ThrottlingError"
	reasonRequestLimit      = "RequestLimitExceeded"
	reasonValidation        = "ValidationError"
	codeValidationException = "ValidationException"
	codeTransactionConflict = "TransactionConflictException"
)

// retryables are the SDK's own tests for a retryable error: throttling codes,
// 5xx status codes, connection errors; not context cancellation.
var retryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// classify maps a native error to what the driver does about it. It and
// reasonClass are the only places that inspect native errors; they compare
// types and codes, never message text. A TransactionCanceledException is
// classified item by item with cancellationReasons instead.
func classify(err error) errorClass {
	if err == nil {
		return classNone
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return classOther
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return classConflict
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		// Only reached for a cancellation without usable reasons.
		return classOther
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case codeValidationException:
			return classInvalid
		case codeTransactionConflict:
			return classRetry
		}
	}
	if retryables.IsErrorRetryable(err) == aws.TrueTernary {
		return classRetry
	}
	return classOther
}

// transient reports whether err, from a request whose context is not done,
// may pass and is reported with eventstore.ErrTransient once the driver's
// retries are spent: a retryable error (classRetry: throttling, a
// transaction conflict, a 5xx, a broken connection) or a timeout of the HTTP
// client.
func transient(err error) bool {
	if retryable(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// retryable reports whether a request that failed with err may be sent
// again as it is: classRetry, or a cancelled transaction whose items failed
// only for reasons that pass (a TransactionConflict, throttling). The
// committer sorts its transactions' reasons out itself; this is for the
// transactions sent through Driver.call.
func retryable(err error) bool {
	if classify(err) == classRetry {
		return true
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	retry := false
	for _, r := range tce.CancellationReasons {
		switch reasonClass(aws.ToString(r.Code)) {
		case classRetry:
			retry = true
		case classNone:
		default:
			return false
		}
	}
	return retry
}

// reasonClass maps one item's cancellation reason code.
func reasonClass(code string) errorClass {
	switch code {
	case "", reasonNone:
		return classNone
	case reasonConditionalCheck:
		return classConflict
	case reasonTransactConflict, reasonThroughput, reasonThrottling, reasonRequestLimit:
		return classRetry
	case reasonValidation:
		return classInvalid
	}
	// ItemCollectionSizeLimitExceeded (a stream over 10 GB) and codes this
	// driver does not know.
	return classOther
}

// cancellationReasons returns the class of each item of a cancelled
// transaction of n items, in request order. ok is false when err is not a
// TransactionCanceledException or has no reasons to go by.
func cancellationReasons(err error, n int) (classes []errorClass, ok bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) == 0 {
		return nil, false
	}
	classes = make([]errorClass, n)
	for i := range classes {
		classes[i] = classNone
		if i < len(tce.CancellationReasons) {
			classes[i] = reasonClass(aws.ToString(tce.CancellationReasons[i].Code))
		}
	}
	return classes, true
}

// wrapNative prefixes a native error with the driver's name, keeping it
// reachable with errors.As (a *types.ThrottlingException, for example) and
// context errors recognisable with errors.Is. Validation errors also match
// eventstore.ErrInvalidArgument.
func wrapNative(err error) error {
	if err == nil {
		return nil
	}
	if classify(err) == classInvalid {
		return fmt.Errorf("dynamodb: %w: %w", eventstore.ErrInvalidArgument, err)
	}
	return fmt.Errorf("dynamodb: %w", err)
}
