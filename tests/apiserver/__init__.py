"""A local Kubernetes API stand-in for tests: a LOCAL PRACTICE API, NOT A CLUSTER.

Test infrastructure. The real, pinned kubectl talks to it over HTTPS (a throw-away CA made at
start-up) with bearer tokens; it serves discovery, CRUD, PATCH, server-side tables, dry-run, the
scale/log/eviction subresources, a miniature deployment controller and RBAC from stored Roles.
See docs/e2e.md.

    standin = StandIn.start(fixtures_path, workdir)
    ... KUBECONFIG=standin.kubeconfig_path kubectl get pods -n prod ...
    standin.requests(); standin.store; standin.reset(); standin.stop()
"""

from .server import DEFAULT_FIXTURES, RequestRecord, StandIn
from .store import ApiError, Store

__all__ = ["DEFAULT_FIXTURES", "ApiError", "RequestRecord", "StandIn", "Store"]
