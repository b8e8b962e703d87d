"""Lambda handlers, one module per function. ``functions/<name>/app.py`` re-exports them, and the
local engine calls the very same functions in-process. A handler module imports only what its
function needs (cold starts). ``rest.py`` is not a handler: it is the HTTP edge (requests, the body
parser, errors to responses) that the api and webhook handlers share."""
