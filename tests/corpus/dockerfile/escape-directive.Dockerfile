# escape=`
FROM busybox
RUN dir c:\ `
  && echo done
USER app
