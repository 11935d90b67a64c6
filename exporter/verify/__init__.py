"""Active verification: probe every Service path from every node.

``echo`` is the target every Service points at (it answers with its pod, its node and
the client address it saw). ``checks`` holds one small unit per check of the fixed
vocabulary (``results.CHECKS``) and their registry; ``runner`` runs them from one node
through ``net.Dialer`` s bound to that node's addresses, and ``probe`` runs rounds over
the nodes ``sampling`` picks. ``metrics`` exports the results, ``emulator`` is a Service
datapath on loopback that scenarios can break on purpose.

Pure: ``results``, ``targets``, ``sampling`` and ``emulator.scenario``.
"""
