"""Compatibility with the seed README's import path (`rag_k8s.agent.tool`)."""
