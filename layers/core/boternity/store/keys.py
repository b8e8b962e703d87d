"""Every key shape of the single table, in one place.

``pk`` / ``sk`` (and the ``gsi1`` index's ``gsi1pk`` / ``gsi1sk``):

* ``RUN#<run>`` / ``RUN`` — a run (``store/run_records.py``); ``gsi1pk = WF#<workflow>``,
  ``gsi1sk = <started_at>#<run>`` lists a workflow's runs newest first.
* ``RUN#<run>`` / ``STEP#<step>[#<iteration>]`` — a step; ``ATTEMPT#<step>#<iteration>#<nnn>`` — a
  failed attempt; ``SYNC#<step>[#<iteration>]`` — a cross-branch signal (``store/sync.py``);
  ``APPROVAL#<approval>`` — a pointer to one of the run's approvals.
* ``APPROVAL#<approval>`` / ``APPROVAL`` — an approval and its task token (``store/approvals.py``);
  ``gsi1pk = APPROVALS#<status>``, ``gsi1sk = <workflow>#<created_at>#<approval>`` lists the
  approvals of one status (``PENDING`` ...) by workflow, oldest first; a status change moves it.
* ``CONC#<workflow>`` / ``CONC`` — the workflow's concurrency counter (``store/slots.py``).
* ``QUEUE#<workflow>`` / ``<queued_at>#<run>`` — a run waiting for a slot (``store/queue.py``).
* ``WF#<name>`` / ``WF`` — a registered workflow, ``gsi1pk = WORKFLOWS``; ``HOOK#<path>`` /
  ``HOOK`` — a webhook path's owner; ``FILEWATCH`` / ``<workflow>#<index>`` — a file-watch trigger
  (``store/workflows.py``).
* ``IDEM#<workflow>`` / ``<scope>#<sha256>`` — a start-once claim (``store/idempotency.py``).
"""

from __future__ import annotations

ItemKey = dict[str, str]   # a pk/sk (or gsi1pk/gsi1sk) pair

KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk")
RUN_SK = "RUN"
STEP_PREFIX = "STEP#"
ATTEMPT_PREFIX = "ATTEMPT#"
APPROVAL_POINTER_PREFIX = "APPROVAL#"
WORKFLOWS_LIST = "WORKFLOWS"
FILEWATCH_PK = "FILEWATCH"


# ---------------------------------------------------------------------- runs and what hangs off them
def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def run(run_id: str) -> ItemKey:
    return {"pk": run_pk(run_id), "sk": RUN_SK}


def runs_of_workflow(workflow: str) -> str:
    """``gsi1pk`` of a workflow's runs."""
    return f"WF#{workflow}"


def run_index(workflow: str, started_at: str, run_id: str) -> ItemKey:
    """The ``gsi1`` attributes that list a run under its workflow, newest first."""
    return {"gsi1pk": runs_of_workflow(workflow), "gsi1sk": f"{started_at}#{run_id}"}


def step_sk(step_id: str, iteration: str = "") -> str:
    return STEP_PREFIX + step_id + (f"#{iteration}" if iteration else "")


def step(run_id: str, step_id: str, iteration: str = "") -> ItemKey:
    return {"pk": run_pk(run_id), "sk": step_sk(step_id, iteration)}


def item_records_prefix(step_id: str, loops: str = "") -> str:
    """Sort-key prefix of a for_each step's item records (iteration ``<loops>/i<index>``)."""
    return f"{STEP_PREFIX}{step_id}#" + (f"{loops}/i" if loops else "i")


def attempts_prefix(step_id: str, iteration: str) -> str:
    return f"{ATTEMPT_PREFIX}{step_id}#{iteration}#"


def attempt(run_id: str, step_id: str, iteration: str, attempt_no: int) -> ItemKey:
    return {"pk": run_pk(run_id), "sk": f"{attempts_prefix(step_id, iteration)}{attempt_no:03d}"}


def sync(run_id: str, step_id: str, iteration: str) -> dict[str, dict[str, str]]:
    """A signal's key in the low-level client's typed form."""
    sk = f"SYNC#{step_id}" + (f"#{iteration}" if iteration else "")
    return {"pk": {"S": run_pk(run_id)}, "sk": {"S": sk}}


def sync_gate(run_id: str, consumer: str, iteration: str) -> dict[str, dict[str, str]]:
    """A gate's key: the producers that arrived for one consumer (step ids cannot hold '.')."""
    return sync(run_id, f"{consumer}.gate", iteration)


# ---------------------------------------------------------------------- approvals
def approval(approval_id: str) -> ItemKey:
    return {"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"}


def approval_pointer(run_id: str, approval_id: str) -> ItemKey:
    return {"pk": run_pk(run_id), "sk": APPROVAL_POINTER_PREFIX + approval_id}


def approvals_with_status(status: str) -> str:
    """``gsi1pk`` of the approvals in one status (PENDING, APPROVED, REJECTED, EXPIRED, CANCELLED)."""
    return f"APPROVALS#{status}"


def approvals_of_workflow(workflow: str) -> str:
    """The ``gsi1sk`` prefix of one workflow's approvals. Workflow names cannot hold ``#``
    (``model.workflow.WORKFLOW_NAME_PATTERN``), so one workflow's prefix never matches another's."""
    return f"{workflow}#"


def approval_index(status: str, workflow: str, created_at: str, approval_id: str) -> ItemKey:
    """The ``gsi1`` attributes that list an approval under its status, by workflow, oldest first."""
    return {"gsi1pk": approvals_with_status(status),
            "gsi1sk": f"{approvals_of_workflow(workflow)}{created_at}#{approval_id}"}


# ---------------------------------------------------------------------- concurrency and queue
def slots(workflow: str) -> ItemKey:
    return {"pk": f"CONC#{workflow}", "sk": "CONC"}


def queue_pk(workflow: str) -> str:
    return f"QUEUE#{workflow}"


def queue_sk(queued_at: str, run_id: str) -> str:
    return f"{queued_at}#{run_id}"


def queued(workflow: str, sk: str) -> ItemKey:
    return {"pk": queue_pk(workflow), "sk": sk}


# ---------------------------------------------------------------------- registry
def workflow(name: str) -> ItemKey:
    return {"pk": f"WF#{name}", "sk": "WF"}


def workflow_index(name: str) -> ItemKey:
    return {"gsi1pk": WORKFLOWS_LIST, "gsi1sk": name}


def hook(path: str) -> ItemKey:
    return {"pk": f"HOOK#{path}", "sk": "HOOK"}


def file_watch(workflow_name: str, index: int) -> ItemKey:
    return {"pk": FILEWATCH_PK, "sk": f"{workflow_name}#{index}"}


# ---------------------------------------------------------------------- start-once claims
def claims_pk(workflow_name: str) -> str:
    return f"IDEM#{workflow_name}"
