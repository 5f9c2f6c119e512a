# Writes tests/data/blazeface_golden.json: onnxruntime's outputs for the bundled fixture face
# letterboxed as src/vision/blazeface.rs does it (5×5 area average into 128×96, centred).
import json, pathlib

import numpy as np
import onnxruntime as ort
from PIL import Image
ROOT = pathlib.Path(__file__).resolve().parent.parent
img = np.asarray(Image.open(ROOT / 'assets/face-640x480.jpg').convert('RGB'), dtype=np.float64)
small = img.reshape(96, 5, 128, 5, 3).mean(axis=(1, 3))
x = np.full((128, 128, 3), -1.0, dtype=np.float32)
x[16:112] = (small / 127.5 - 1.0).astype(np.float32)
s = ort.InferenceSession(str(ROOT / 'assets/blazeface_short_128.onnx'))
reg, cls = s.run(None, {'input': x.transpose(2, 0, 1)[None]})
top = np.argsort(-cls[0, :, 0])[:8]
json.dump({
  'generator': 'onnxruntime ' + ort.__version__ + ' on assets/face-640x480.jpg (libjpeg decode via Pillow)',
  'top': [{'anchor': int(i), 'logit': float(cls[0, i, 0]), 'regressors': [float(v) for v in reg[0, i]]} for i in top],
  'logit_sum': float(cls.sum()),
}, open(ROOT / 'tests/data/blazeface_golden.json', 'w'), indent=1)
print(top, cls[0, top, 0])
