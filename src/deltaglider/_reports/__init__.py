"""The private stages of the two reports: :mod:`.measure` is what :mod:`deltaglider.stats`
measures (the physical listing by deltaspace, the HEADs, each deltaspace's figures), and
:mod:`.sampling` how :func:`deltaglider.analyze.analyze` samples (the plan and the sampler).

The reports' rule: they are read models of the physical layout (as restic's checker reads the
repository). They may read the storage directly (listings, HEADs, GETs), but never write an
object the engine owns, and they take engine *policy* (which key would be the reference, the
encoder's settings, the max-ratio limit, natural order) from the engine's seams
(:mod:`deltaglider.engine`), never re-implemented. ``stats`` writes only its own cache documents
under ``.deltaglider/``.
"""
