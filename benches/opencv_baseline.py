#!/usr/bin/env python3
"""The capture-pipeline baseline in Python + OpenCV, for benches/vision.rs to print beside its
own figures: the same frames, the same steps, the same face model, one thread.

Steps per frame: decode (MJPEG to colour; YUYV converted), gray at 640 px wide for the mean
luma, the frame letterboxed to 128×128 (INTER_AREA), BlazeFace short-range through OpenCV's DNN
module (the ONNX kiosk-agent bundles), scores decoded for the best face, and the Laplacian
variance of that face scaled to 96 px. Also the network alone on one input.

usage: opencv_baseline.py FRAMES_DIR MODEL_ONNX RUNS
"""
import sys
import time

import cv2
import numpy as np

cv2.setNumThreads(1)
frames_dir, model, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
net = cv2.dnn.readNetFromONNX(model)
outputs = net.getUnconnectedOutLayersNames()

anchors = []
for cells, per in ((16, 2), (8, 6)):
    for y in range(cells):
        for x in range(cells):
            anchors += [((x + 0.5) / cells, (y + 0.5) / cells)] * per
anchors = np.array(anchors, np.float32) * 128


def run_net(blob):
    net.setInput(blob)
    return net.forward(outputs)


def analyse(rgb):
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if w > 640:
        gray = cv2.resize(gray, (640, h * 640 // w), interpolation=cv2.INTER_AREA)
    mean = float(cv2.mean(gray)[0])
    s = 128 / max(w, h)
    nw, nh = round(w * s), round(h * s)
    box = np.full((128, 128, 3), 0, np.uint8)
    oy, ox = (128 - nh) // 2, (128 - nw) // 2
    box[oy:oy + nh, ox:ox + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    blob = (box.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
    out = dict(zip(outputs, run_net(blob)))
    scores = 1 / (1 + np.exp(-np.clip(out["classificators"][0, :, 0], -100, 100)))
    best = int(np.argmax(scores))
    sharp = 0.0
    if scores[best] >= 0.5:
        r = out["regressors"][0, best]
        cx, cy = r[0] + anchors[best, 0], r[1] + anchors[best, 1]
        k = gray.shape[1] / w / s
        x0, y0 = int(max(0, (cx - r[2] / 2 - ox) * k)), int(max(0, (cy - r[3] / 2 - oy) * k))
        crop = gray[y0:y0 + int(r[3] * k), x0:x0 + int(r[2] * k)]
        if crop.size:
            face = cv2.resize(crop, (96, max(1, 96 * crop.shape[0] // crop.shape[1])), interpolation=cv2.INTER_AREA)
            sharp = float(cv2.Laplacian(face, cv2.CV_64F).var())
    return mean, float(scores[best]), sharp


def mjpeg(data):
    return analyse(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


def yuyv(data):
    return analyse(cv2.cvtColor(data, cv2.COLOR_YUV2RGB_YUYV))


def timed(fn, arg):
    for _ in range(runs // 10 + 1):
        fn(arg)
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        fn(arg)
        t.append((time.perf_counter() - s) * 1000)
    t.sort()
    return t[len(t) // 2], t[len(t) * 9 // 10]


cases = [
    ("mjpeg_1280x720", mjpeg, np.fromfile(f"{frames_dir}/1280x720_center.jpg", np.uint8)),
    ("mjpeg_1280x720_large_face", mjpeg, np.fromfile(f"{frames_dir}/1280x720_large.jpg", np.uint8)),
    ("mjpeg_640x480", mjpeg, np.fromfile(f"{frames_dir}/640x480_center.jpg", np.uint8)),
    ("yuyv_640x480", yuyv, np.fromfile(f"{frames_dir}/640x480_center.yuyv", np.uint8).reshape(480, 640, 2)),
]
print(f"opencv {cv2.__version__}, 1 thread")
for name, fn, data in cases:
    p50, p90 = timed(fn, data)
    print(f"metric opencv_analysis_{name}_p50 {p50:.2f} ms")
    print(f"metric opencv_analysis_{name}_p90 {p90:.2f} ms")
p50, p90 = timed(run_net, np.full((1, 3, 128, 128), 0.1, np.float32))
print(f"metric opencv_face_model_p50 {p50:.2f} ms")
print(f"metric opencv_face_model_p90 {p90:.2f} ms")
