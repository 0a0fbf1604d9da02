FROM busybox
RUN echo a \
  && echo b
USER 1000
