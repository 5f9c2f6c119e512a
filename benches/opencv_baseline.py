#!/usr/bin/env python3
"""The capture-pipeline baseline in Python + OpenCV, for benches/vision.rs to print beside its
own figures: the same frames, the same steps, the same detector parameters, one thread.

Steps per frame: decode (MJPEG at half scale straight to gray; YUYV by taking Y), mean luma,
downscale to 320 px wide (INTER_AREA), LBP cascade (the XML kiosk-agent bundles, scale step
1.2, 3 neighbours, faces from 40 px), and the Laplacian variance of the face scaled to 96 px.

usage: opencv_baseline.py FRAMES_DIR CASCADE_XML RUNS
"""
import statistics
import sys
import time

import cv2
import numpy as np

cv2.setNumThreads(1)
frames_dir, cascade_xml, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
cascade = cv2.CascadeClassifier(cascade_xml)
assert not cascade.empty(), cascade_xml


def analyse(gray):
    mean = float(cv2.mean(gray)[0])
    h, w = gray.shape
    small = cv2.resize(gray, (320, h * 320 // w), interpolation=cv2.INTER_AREA)
    faces = cascade.detectMultiScale(small, scaleFactor=1.2, minNeighbors=3, minSize=(40, 40))
    sharp = 0.0
    if len(faces) == 1:
        x, y, fw, fh = faces[0]
        k = gray.shape[1] / 320
        crop = gray[int(y * k):int((y + fh) * k), int(x * k):int((x + fw) * k)]
        face = cv2.resize(crop, (96, 96 * crop.shape[0] // crop.shape[1]), interpolation=cv2.INTER_AREA)
        sharp = float(cv2.Laplacian(face, cv2.CV_64F).var())
    return mean, len(faces), sharp


def mjpeg(data):
    return analyse(cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_2))


def yuyv(data):
    return analyse(cv2.cvtColor(data, cv2.COLOR_YUV2GRAY_YUYV))


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
    ("yuyv_640x480", yuyv, np.fromfile(f"{frames_dir}/640x480_center.yuyv", np.uint8).reshape(480, 640, 2)),
]
print(f"opencv {cv2.__version__}, 1 thread")
for name, fn, data in cases:
    p50, p90 = timed(fn, data)
    print(f"metric opencv_analysis_{name}_p50 {p50:.2f} ms")
    print(f"metric opencv_analysis_{name}_p90 {p90:.2f} ms")
