"""Everyone in one world under a moving camera (issue 18).

``motion``: the camera's rotation and zoom from frame to frame, tracked on the background with people masked
out; ``segments``: the per-frame path chained over each shot (keyframes against drift, cuts start a segment,
static shots snapped to identity); ``frame``: the gravity-up world with the floor at z = 0, from the people's
upright bodies and feet, and the result-file keys that express camera and people in it; ``focal``: the absolute
focal length recovered from the camera's turns, when the user gave no lens (reported, not used).
"""

from backend.world.frame import add_world_frame
from backend.world.motion import MotionSettings, RotationTracker, rotation_zoom_from_points
from backend.world.segments import CameraPath, CameraPathBuilder, path_of_frames

__all__ = ["CameraPath", "CameraPathBuilder", "MotionSettings", "RotationTracker", "add_world_frame",
           "path_of_frames", "rotation_zoom_from_points"]
