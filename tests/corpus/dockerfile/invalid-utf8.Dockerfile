FROM busybox
LABEL x="þÿ"
