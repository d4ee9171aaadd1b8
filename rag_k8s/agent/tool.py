"""The seed README imports `from rag_k8s.agent.tool import k8s_exec`; keep that working."""

from ..tool import k8s_exec, plan

__all__ = ["k8s_exec", "plan"]
