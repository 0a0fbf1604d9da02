FROM busybox
CMD ["sh", "-c",
ENTRYPOINT ["a" "b"]
HEALTHCHECK ["x"
USER
