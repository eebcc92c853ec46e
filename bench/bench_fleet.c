/* bench_fleet — see bench_fleet.h. */
#include "bench_fleet.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "bench_atomic.h"
#include "bench_sys.h"
#include "wsutil.h"

/* One worker's counters; only that worker writes them. */
typedef struct bench_fleet__wstat {
    uint64_t sent, skipped, connected, disconnects, errors;
    uint64_t pad[3]; /* own cache line */
} bench_fleet__wstat;

/* MAP_SHARED between main and the workers, created before fork(). */
typedef struct bench_fleet__ctl {
    double rate;     /* per-device Hz; 0 stops publishing */
    uint64_t epoch;  /* bumped by main to re-base the schedule */
    int stop, go;
    bench_fleet__wstat w[BENCH_FLEET_MAX_WORKERS];
    bench_fleet_desat desat[BENCH_MAX_DESAT];
} bench_fleet__ctl;

struct bench_fleet {
    const bench_opts *o;
    const bench_sendtab *tab;
    bench_fleet__ctl *ctl;
    int nworkers;
    pid_t pid[BENCH_FLEET_MAX_WORKERS];
};

typedef struct bench_fleet__worker bench_fleet__worker;

typedef struct bench_fleet__dev {
    struct mosquitto *mosq;
    bench_fleet__worker *wk;
    long num;
    int state; /* 0 new, 1 connecting, 2 connected, 3 dead */
    int want;
    char topic[96];
} bench_fleet__dev;

/* Everything one worker process owns; lives on its stack. */
struct bench_fleet__worker {
    const bench_opts *o;
    const bench_sendtab *tab;
    bench_fleet__ctl *ctl;
    bench_fleet__wstat *w; /* this worker's slot */
    long lo, hi;           /* this worker's devices */
    double connect_rate;   /* this worker's share */
    bench_fleet__dev *devs; /* indexed by device number; only [lo, hi) used */
    int ep;
};

static void bench_fleet__on_connect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    bench_fleet__dev *d = ud;
    if (rc == 0 && d->state == 1) {
        d->state = 2;
        BENCH_INC(d->wk->w->connected);
    }
}

static void bench_fleet__on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    (void)m; (void)rc;
    bench_fleet__dev *d = ud;
    if (d->state == 2) {
        BENCH_ST(d->wk->w->connected, BENCH_LD(d->wk->w->connected) - 1);
        BENCH_INC(d->wk->w->disconnects);
    }
    d->state = 3; /* not reconnected: a bench run is short; the loss shows */
}

static void bench_fleet__set_want(bench_fleet__dev *d)
{
    int want = mosquitto_want_write(d->mosq);
    if (want != d->want && d->state != 3) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = d};
        epoll_ctl(d->wk->ep, EPOLL_CTL_MOD, mosquitto_socket(d->mosq), &ev);
        d->want = want;
    }
}

/* Desaturated device k of the fleet is device k * stride (spread evenly). */
static long bench_fleet__desat_stride(const bench_opts *o)
{
    return o->desat_devices ? o->devices / o->desat_devices : 0;
}

/* SpO2 of device dev now (ns since publishing started): 80 once its turn
 * came (--desat-after-ms + (k + 1) x --desat-every-ms; its low readings are
 * recorded), else the fleet's 98. */
static int bench_fleet__spo2(bench_fleet__worker *wk, long dev, uint64_t since_ns, int64_t ts_ms,
                             bench_fleet_desat **rec)
{
    long stride = bench_fleet__desat_stride(wk->o);
    *rec = NULL;
    if (!stride || dev % stride || dev / stride >= wk->o->desat_devices)
        return 98;
    long k = dev / stride;
    if ((double)since_ns / 1e6 < wk->o->desat_after_ms + (double)(k + 1) * wk->o->desat_every_ms)
        return 98;
    bench_fleet_desat *d = &wk->ctl->desat[k];
    if (d->n < BENCH_FLEET_DESAT_READINGS) {
        d->ts_ms[d->n] = ts_ms;
        *rec = d;
    }
    return 80; /* below spo2_desat's 85 % (docs/ALARMS.md) */
}

static int64_t bench_fleet__epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void bench_fleet__run(bench_fleet__worker *wk)
{
    const bench_opts *o = wk->o;
    bench_fleet__ctl *S = wk->ctl;
    bench_fleet__wstat *W = wk->w;
    bench_fleet__dev *P = wk->devs;
    uint64_t *send_ns = wk->tab->ns;
    long maxseq = wk->tab->maxseq;
    struct epoll_event evs[512];
    long nconn = wk->lo;
    uint64_t t0 = bench_now_ns(), misc = t0;
    /* Message m goes to device m % N with seq m / N (see bench_fleet.h). */
    uint64_t m = 0, m_base = 0, t_base = 0, epoch = 0, t_pub0 = 0; /* t_pub0: publishing started */
    double rate = 0;
    char payload[512];
    int boot = (int)(time(NULL) % 100000);
    while (!BENCH_LD(S->stop)) {
        if (getppid() == 1)
            break; /* the parent is gone */
        uint64_t now = bench_now_ns();
        /* connects, paced */
        long allowed = (long)((double)(now - t0) / 1e9 * wk->connect_rate) + 50;
        while (nconn < wk->hi && nconn - wk->lo < allowed) {
            bench_fleet__dev *d = &P[nconn++];
            d->state = 1;
            if (mosquitto_connect(d->mosq, "127.0.0.1", o->broker_port, 120) != MOSQ_ERR_SUCCESS) {
                d->state = 3;
                BENCH_INC(W->errors);
                continue;
            }
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = d};
            d->want = 1;
            epoll_ctl(wk->ep, EPOLL_CTL_ADD, mosquitto_socket(d->mosq), &ev);
        }
        uint64_t e = __atomic_load_n(&S->epoch, __ATOMIC_ACQUIRE);
        if (e != epoch) {
            epoch = e;
            rate = S->rate;
            m_base = m;
            t_base = now;
            if (rate > 0 && !t_pub0)
                t_pub0 = now;
        }
        if (rate > 0) {
            double per_ns = (double)o->devices * rate / 1e9;
            /* Catch up at most 1 s of schedule; beyond that we are the bottleneck. */
            uint64_t due_upto = m_base + (uint64_t)((double)(now - t_base) * per_ns);
            if (due_upto > m + (uint64_t)(per_ns * 1e9) + 1) {
                uint64_t skip = due_upto - m - (uint64_t)(per_ns * 1e9);
                BENCH_ST(W->skipped, BENCH_LD(W->skipped) + skip);
                m += skip;
            }
            while (m < due_upto) {
                long dev = (long)(m % (uint64_t)o->devices);
                long seq = (long)(m / (uint64_t)o->devices);
                m++;
                if (seq >= maxseq) {
                    rate = 0;
                    break;
                }
                if (dev < wk->lo || dev >= wk->hi)
                    continue; /* another worker's device */
                bench_fleet__dev *d = &P[dev];
                if (d->state != 2) {
                    BENCH_INC(W->skipped);
                    continue;
                }
                int hr = 60 + (int)(seq % 40);
                int64_t ts = o->send_ts ? bench_fleet__epoch_ms() : 0;
                bench_fleet_desat *low;
                int spo2 = bench_fleet__spo2(wk, dev, now - t_pub0, ts, &low);
                char tsf[32] = "";
                if (o->send_ts)
                    snprintf(tsf, sizeof tsf, ",\"ts\":%" PRId64, ts);
                int n = snprintf(payload, sizeof payload,
                                 "{\"sensor_type\":\"MAX30614\",\"device_id\":\"%s%06ld\","
                                 "\"object_temp\":36.6,\"ambient_temp\":24.1,\"heart_rate\":%d,"
                                 "\"spo2\":%d,\"timestamp\":%" PRIu64 ",\"seq\":%ld,\"boot\":%d%s}",
                                 o->id_prefix, d->num, hr, spo2, (now - t0) / 1000000u, seq, boot, tsf);
                size_t k = bench_sendtab_index(wk->tab, dev, seq);
                BENCH_ST(send_ns[k], bench_now_ns());
                int rc = mosquitto_publish(d->mosq, NULL, d->topic, n, payload, o->qos, false);
                if (rc != MOSQ_ERR_SUCCESS) {
                    BENCH_ST(send_ns[k], 0);
                    BENCH_INC(W->errors);
                    continue;
                }
                BENCH_INC(W->sent);
                if (low)
                    low->pub_ns[low->n++] = BENCH_LD(send_ns[k]);
                bench_fleet__set_want(d);
            }
        }
        int timeout = 1;
        int n = epoll_wait(wk->ep, evs, 512, timeout);
        for (int i = 0; i < n; i++) {
            bench_fleet__dev *d = evs[i].data.ptr;
            if (d->state == 3)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                if (mosquitto_loop_read(d->mosq, 1) != MOSQ_ERR_SUCCESS) {
                    bench_fleet__on_disconnect(d->mosq, d, 1);
                    continue;
                }
            if (evs[i].events & EPOLLOUT)
                mosquitto_loop_write(d->mosq, 1);
            if (d->state != 3)
                bench_fleet__set_want(d);
        }
        if (now - misc > 1000000000u) {
            misc = now;
            for (long i = wk->lo; i < nconn; i++)
                if (P[i].state == 2)
                    mosquitto_loop_misc(P[i].mosq);
        }
    }
}

/* The body of worker wi, in the child process: never returns. */
static void bench_fleet__worker_main(bench_fleet *f, int wi, long per)
{
    const bench_opts *o = f->o;
    signal(SIGINT, SIG_IGN); /* the parent stops us through ctl->stop */
    bench_fleet__worker wk = {
        .o = o,
        .tab = f->tab,
        .ctl = f->ctl,
        .w = &f->ctl->w[wi],
        .lo = wi * per,
        .connect_rate = o->connect_rate / f->nworkers,
    };
    wk.hi = wk.lo + per < o->devices ? wk.lo + per : o->devices;
    mosquitto_lib_init();
    wk.devs = calloc((size_t)o->devices, sizeof *wk.devs);
    if (!wk.devs) {
        fprintf(stderr, "vigil-bench: worker %d: out of memory\n", wi);
        _exit(1);
    }
    for (long i = wk.lo; i < wk.hi; i++) {
        bench_fleet__dev *d = &wk.devs[i];
        char id[64];
        d->num = i;
        d->wk = &wk;
        snprintf(id, sizeof id, "bench-pub-%d-%ld", (int)getppid(), i);
        snprintf(d->topic, sizeof d->topic, "sensors/esp32/%s%06ld/data", o->id_prefix, i);
        d->mosq = mosquitto_new(id, true, d);
        mosquitto_int_option(d->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_connect_callback_set(d->mosq, bench_fleet__on_connect);
        mosquitto_disconnect_callback_set(d->mosq, bench_fleet__on_disconnect);
    }
    wk.ep = epoll_create1(0);
    while (!BENCH_LD(f->ctl->go) && !BENCH_LD(f->ctl->stop) && getppid() != 1)
        bench_sys_sleep_s(0.01);
    bench_fleet__run(&wk);
    _exit(0); /* sockets close with the process */
}

bench_fleet_status bench_fleet_create(const bench_opts *o, const bench_sendtab *tab,
                                      bench_fleet **out)
{
    *out = NULL;
    bench_fleet *f = calloc(1, sizeof *f);
    if (!f)
        return BENCH_FLEET_ENOMEM;
    f->ctl = mmap(NULL, sizeof *f->ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (f->ctl == MAP_FAILED) {
        free(f);
        return BENCH_FLEET_ENOMEM;
    }
    f->o = o;
    f->tab = tab;
    for (long k = 0; k < o->desat_devices; k++)
        f->ctl->desat[k].dev = k * bench_fleet__desat_stride(o);
    *out = f;
    return BENCH_FLEET_OK;
}

bench_fleet_status bench_fleet_fork(bench_fleet *f)
{
    const bench_opts *o = f->o;
    f->nworkers = (int)((o->devices + o->per_worker - 1) / o->per_worker);
    if (f->nworkers > BENCH_FLEET_MAX_WORKERS)
        f->nworkers = BENCH_FLEET_MAX_WORKERS;
    long per = (o->devices + f->nworkers - 1) / f->nworkers;
    for (int wi = 0; wi < f->nworkers; wi++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return BENCH_FLEET_EFORK;
        }
        if (pid == 0)
            bench_fleet__worker_main(f, wi, per);
        f->pid[wi] = pid;
    }
    return BENCH_FLEET_OK;
}

void bench_fleet_go(bench_fleet *f)
{
    BENCH_ST(f->ctl->go, 1);
}

void bench_fleet_set_rate(bench_fleet *f, double hz)
{
    f->ctl->rate = hz;
    __atomic_fetch_add(&f->ctl->epoch, 1, __ATOMIC_RELEASE);
}

void bench_fleet_stop(bench_fleet *f)
{
    BENCH_ST(f->ctl->stop, 1);
    for (int i = 0; i < f->nworkers; i++)
        waitpid(f->pid[i], NULL, 0);
}

void bench_fleet_read(const bench_fleet *f, bench_fleet_stats *out)
{
    *out = (bench_fleet_stats){0};
    for (int i = 0; i < f->nworkers; i++) {
        const bench_fleet__wstat *w = &f->ctl->w[i];
        out->sent += BENCH_LD(w->sent);
        out->skipped += BENCH_LD(w->skipped);
        out->connected += BENCH_LD(w->connected);
        out->disconnects += BENCH_LD(w->disconnects);
        out->errors += BENCH_LD(w->errors);
    }
}

int bench_fleet_workers(const bench_fleet *f)
{
    return f->nworkers;
}

const bench_fleet_desat *bench_fleet_desat_of(const bench_fleet *f, long k)
{
    return &f->ctl->desat[k];
}

int bench_fleet_worker_pid(const bench_fleet *f, int i)
{
    return f->pid[i];
}
