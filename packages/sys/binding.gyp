{
  "targets": [
    {
      "target_name": "tsbuild_sys",
      "sources": ["native/sys.c", "native/deflate.c", "native/walk.c", "native/hash.c", "native/job.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
