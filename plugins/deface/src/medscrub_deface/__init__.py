"""medscrub-deface: remove the face, or keep only the brain, of head MR and CT
volumes with a small 3D U-Net whose weights ship in this package."""
