"""Network building blocks and backbones shared by the estimators, with the official state_dict key names.

``hrnet.HRNetW32`` serves ROMP and BEV (and later PARE); ``resnet.ResNet50Deconv`` serves ROMP's ResNet-50
variant; ``romp.ROMPv1`` and ``bev.BEVv1`` are the full networks whose state_dicts equal the released
checkpoints (see specs/keys/).
"""
