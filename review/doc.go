// Package review holds what podgate's two admission handlers share besides
// the engine: the check that a request is well formed (Check), the
// conversion to an engine.Request, the evaluation deadline, the answer to
// a failed evaluation (Failed), and so the one error scheme of both
// webhooks, below. What is in scope and what the policies decide is the
// engine's (engine.Mutate, engine.Validate).
//
// # Answers
//
// This table is the error scheme of /mutate and /validate; docs and the
// handlers point here. Every answer is HTTP 200 with an AdmissionReview
// whose response carries the code and the reason (response.status), as
// the admission protocol has it and controller-runtime writes it: an API
// server takes any other HTTP status for a failed call and applies the
// webhook's failurePolicy, which under Ignore would admit the object
// unchecked. The codes below are response.status.code.
//
//	input                                        answer
//	- the HTTP server and controller-runtime's decoder (cmd/webhook):
//	empty body                                   400 "request body is empty"
//	Content-Type other than application/json     400 "contentType=..., expected application/json"
//	not JSON, JSON that is not an object,        400, the decoder's reason
//	  nesting deeper than 10,000 levels            ("exceeded max depth")
//	body over 7 MiB (more than an API server     413 "request entity is too large"
//	  sends: two 3 MiB objects and the request)
//	body still arriving --body-timeout (10s)     400 naming the timeout; the
//	  after the headers                            connection is closed
//	headers still arriving after 32s             connection closed
//	admission.k8s.io/v1beta1                     answered in v1beta1
//	- Check, and the engine's reading of the object (Failed):
//	no uid or no kind; CREATE or UPDATE with     400, allowed: false, the reason
//	  no object; UPDATE with no oldObject;
//	  an object or oldObject that is not a
//	  JSON object (a string, a list, broken JSON)
//	- the engine's decision:
//	out of scope (engine.Skip: DELETE or         200, allowed, the reason
//	  CONNECT, an excluded namespace, an
//	  object a controller in config
//	  controllerUsers writes for its owner)
//	/mutate: a Pod UPDATE, an UPDATE with an     200, allowed, no patch
//	  unchanged pod template, nothing to add
//	/mutate: mutations                           200, allowed, the JSONPatch from the
//	                                               object to its mutated copy
//	/validate: no violation                      200, allowed
//	/validate: warn violations only              200, allowed, response.warnings
//	/validate: deny violations                   403, allowed: false, one message
//	                                               listing every deny violation,
//	                                               plus the warnings
//	/validate: dryrun violations                 as without them, plus audit
//	                                               annotations, a log line, a metric
//	/validate: a violation a PolicyException     a warning naming the exception
//	  covers                                       instead of a denial
//	/validate: a PolicyException that names an   403, allowed: false, one line per
//	  unknown rule, one out of exceptions'         problem
//	  reach, or a bad expiry
//	fields of the wrong type (containers: 5)     evaluated: a rule finds nothing to
//	                                               check there
//	- failures:
//	evaluation error, evaluation past            500, allowed: false, the reason
//	  --eval-timeout (3s), patch failure, no       (never an allow; the
//	  policy set loaded                            failurePolicy decides)
//	a panic in a handler (a bug)                 500 with the panic's message,
//	                                               recovered and counted
//
// Tests: review_test.go and the handlers' tests for the answers from here
// on; cmd/webhook over the real TLS server for the HTTP rows, and its
// FuzzAdmissionHTTP for any body.
package review
