"""LASOR (Yang et al., TIP 2022): SMPL from 2D keypoint heatmaps + a silhouette, trained on synthetic,
occlusion-aware data generated on the fly (see README.md in this folder).

Modules: ``keypoints`` (the COCO-17 set taken from MediaPipe's 33 landmarks, and its body-side definition),
``body`` (a light, decimated copy of the body model for fast posing and rendering), ``poses`` (the pose
sampler with anatomical limits and correlated activity modes), ``data`` (the synthetic scene generator),
``model`` (encoder + iterative error feedback regressor), ``losses``, ``train`` (the training command) and
``metrics`` (held-out evaluation against a mean-pose baseline).
"""
