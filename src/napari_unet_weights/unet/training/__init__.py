"""Training the U-Net: the loop (:mod:`.train`), its data and augmentation (:mod:`.data`,
:mod:`.augment`), the time budget (:mod:`.budget`), runs that resume (:mod:`.run_dir`), a
parent model to start from (:mod:`.parent`), seeding and the final validation (:mod:`.tuning`).
"""
