"""How much the built-in prior's UNet uses each of its conditions, measured with diffusers on the
shipped weights: for noised training images of bouncing objects (the first shard of a kiln data
set), the relative change of ε when τ moves by 0.25, when the camera turns 180°, and when the
caption is dropped, at t = 900, 600 and 300; then the norms of the class-embedding weights per
input of the view vector.

    python3 tools/probe_prior_conditioning.py [PRIOR=assets/prior] [DATA=data/toy32]

DATA: a folder from `kiln dataset --size 32` (with --motion-probability 0.8 the first shard has
bouncing samples for sure)."""
import torch, json, numpy as np, math, sys
from diffusers import UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer
from safetensors.numpy import load_file
torch.set_num_threads(1)
P=sys.argv[1] if len(sys.argv) > 1 else 'assets/prior'
DATA=sys.argv[2] if len(sys.argv) > 2 else 'data/toy32'
unet=UNet2DConditionModel.from_pretrained(P+'/unet').float().eval()
te=CLIPTextModel.from_pretrained(P+'/text_encoder').float().eval(); tok=CLIPTokenizer.from_pretrained(P+'/tokenizer')
d=load_file(DATA+'/shard_00000.safetensors'); recs=[json.loads(l) for l in open(DATA+'/shard_00000.jsonl')]
sched=json.load(open(P+'/scheduler/scheduler_config.json'))
betas=np.linspace(sched['beta_start'],sched['beta_end'],1000); ac=np.cumprod(1-betas)
def vec(az,el,t):
    a,e=math.radians(az),math.radians(el); v=[math.sin(a),math.cos(a),math.sin(e),math.cos(e)]
    return v+([t,math.sin(2*math.pi*t),math.cos(2*math.pi*t),1] if t is not None else [0,0,0,0])
idx=[i for i,r in enumerate(recs) if r.get('motion')=='bouncing'][:6]
assert idx, 'the first shard has no bouncing sample: make the data set with kiln dataset --motion-probability 0.8'
g=torch.Generator().manual_seed(0)
res={'tau':[], 'az':[], 'text':[]}
for i in idx:
    r=recs[i]; x0=torch.tensor(d['images'][i].astype(np.float32)/127.5-1)[None]
    ids=tok([r['caption']],padding='max_length',max_length=77,return_tensors='pt').input_ids
    ids0=tok([''],padding='max_length',max_length=77,return_tensors='pt').input_ids
    with torch.no_grad():
        ctx=te(ids)[0]; ctx0=te(ids0)[0]
        for t in [900,600,300]:
            eps=torch.randn(x0.shape,generator=g); xt=math.sqrt(ac[t])*x0+math.sqrt(1-ac[t])*eps
            def pred(v,c=ctx): return unet(xt,t,encoder_hidden_states=c,class_labels=torch.tensor([v],dtype=torch.float32)).sample
            base=pred(vec(r['azimuthDegrees'],r['elevationDegrees'],r['time']))
            dt=(pred(vec(r['azimuthDegrees'],r['elevationDegrees'],(r['time']+0.25)%1))-base).norm()/base.norm()
            da=(pred(vec(r['azimuthDegrees']+180,r['elevationDegrees'],r['time']))-base).norm()/base.norm()
            dc=(pred(vec(r['azimuthDegrees'],r['elevationDegrees'],r['time']),ctx0)-base).norm()/base.norm()
            res['tau'].append((t,float(dt))); res['az'].append((t,float(da))); res['text'].append((t,float(dc)))
for k,v in res.items():
    for t in [900,600,300]:
        vals=[x for tt,x in v if tt==t]; print(k,t,'mean relative change %.4f'%np.mean(vals))
# class embedding weights scale vs time embedding
sd=unet.state_dict()
for n in ['class_embedding.linear_1.weight','class_embedding.linear_2.weight','time_embedding.linear_1.weight','time_embedding.linear_2.weight']:
    print(n, tuple(sd[n].shape), 'norm %.3f'%sd[n].norm())
w=sd['class_embedding.linear_1.weight']; print('per-input column norms', [round(float(x),3) for x in w.norm(dim=0)])
