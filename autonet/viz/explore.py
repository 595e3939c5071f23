"""Placeholder."""
def explore(root):
    raise NotImplementedError
class Explorer:
    pass
