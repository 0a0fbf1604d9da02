FROM busybox
RUN echo a \
  && echo b \
