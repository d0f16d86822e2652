"""The metric families of ``d2m-bench eval``, one module per family (see ``REGISTRY``).
"""
